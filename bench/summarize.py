#!/usr/bin/env python3
"""Aggregation for bench/run.sh (standard library only).

  summarize.py record ROW JOB REP EXIT STDOUT STDERR   append one run's result to stdout as a JSON line
  summarize.py report RESULTS.jsonl --machine FILE --command CMD [--micro REPORT.md ...] [--out FILE]
                                                      print the table of medians; write the markdown

A run's result is the LAST JSON object on its stdout that has "steps_per_second" (the python
references print one; `trainer train --json` ends with {"event": "completed", ...}). A run that
exits non-zero or prints no such line is a failure, reported with the first line of its stderr.
Ratios are steps/s divided by the numpy loop's steps/s for the same job, measured in the same run.
"""
import argparse
import json
import statistics
import sys

BASELINE = {"seed": "numpy loop", "job3": "numpy loop job3 float64"}

# (label, numerator row, denominator row, target) -- the targets, checked when both rows exist.
TARGETS = [
    ("seed: embedded 2 workers / numpy", "trainer embedded W=2", "numpy loop", ">= 1.25"),
    ("seed: 2 silos / numpy", "trainer 2 silos W=2", "numpy loop", ">= 1.0"),
    ("seed: 2 silos / torch DDP gloo 2 processes", "trainer 2 silos W=2", "torch DDP gloo 2 processes", ">= 3"),
    ("seed: embedded 2 workers, first layer split / numpy", "trainer embedded W=2 split", "numpy loop", ">= 1.25"),
    ("seed: 2 silos, first layer split / numpy", "trainer 2 silos W=2 split", "numpy loop", ">= 1.0"),
    ("seed: 2 silos, first layer split / torch DDP gloo 2 processes", "trainer 2 silos W=2 split", "torch DDP gloo 2 processes", ">= 3"),
    ("seed: 2 silos float32 / numpy", "trainer 2 silos W=2 float32", "numpy loop", "(info)"),
    ("seed: embedded 2 workers, managed GEMM / numpy", "trainer embedded W=2 managed GEMM", "numpy loop", ">= 1.25"),
    ("seed: autograd engine / hand engine (embedded W=2; cost <= 1.5x means >= 0.67)", "trainer embedded W=2 autograd", "trainer embedded W=2", ">= 0.67"),
    ("seed: autograd / hand, managed GEMM", "trainer embedded W=2 autograd managed GEMM", "trainer embedded W=2 managed GEMM", ">= 0.67"),
    ("job3: 2 silos W=2 / embedded W=1", "trainer job3 2 silos W=2", "trainer job3 W=1", ">= 1.8"),
    ("job3: embedded W=2 / embedded W=1", "trainer job3 W=2", "trainer job3 W=1", "(info)"),
    ("job3: torch DDP 2 processes / torch 1 process (DDP's scaling)", "torch DDP job3 float64", "torch 1 process job3 float64", "(reference)"),
    ("job3: float32 / float64 (embedded W=2)", "trainer job3 W=2 float32", "trainer job3 W=2", ">= 1.7"),
    ("job3: float32 / float64 (2 silos W=2)", "trainer job3 2 silos W=2 float32", "trainer job3 2 silos W=2", "(info)"),
    ("50M parameters: 2 silos W=2 / embedded W=2 (the first step includes loading the parameters; drawn ones each worker draws)", "trainer 50M params 2 silos W=2", "trainer 50M params embedded W=2", "(info)"),
    ("job3: numpy float32 / float64", "numpy loop job3 float32", "numpy loop job3 float64", "(reference)"),
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
    if a.exit != 0 or result is None:
        failure = failure or first_error_line(a.stderr) or first_error_line(a.stdout) or f"exit code {a.exit}, no result line"
        if a.exit == 124:
            failure = "timed out; " + failure
        result = None
    print(json.dumps({"row": a.row, "job": a.job, "rep": a.rep, "exit": a.exit, "result": result, "failed": failure}))


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
        if ok:
            m["seconds"] = statistics.median(r["seconds"] for r in ok)
            m["steps_per_second"] = statistics.median(r["steps_per_second"] for r in ok)
            m["steps"] = ok[0]["steps"]
            m["final_loss"] = statistics.median(r["final_loss"] for r in ok)
            m["note"] = note_of(ok[0])
        out[name] = m
    return out


def note_of(r):
    keys = [("blas_core", "OpenBLAS kernel {}"), ("backward", "backward {}"), ("threads", "{} threads"),
            ("threads_per_rank", "{} threads/rank")]
    return ", ".join(fmt.format(r[k]) for k, fmt in keys if k in r)


def ratio(med, num, den):
    a, b = med.get(num, {}), med.get(den, {})
    if a.get("steps_per_second") and b.get("steps_per_second"):
        return a["steps_per_second"] / b["steps_per_second"]
    return None


def table(med):
    head = "| row | job | steps | median s | median steps/s | vs numpy (same job) | final loss | runs ok | note |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, m in med.items():
        if "steps_per_second" in m:
            r = ratio(med, name, BASELINE.get(m["job"], ""))
            lines.append(f"| {name} | {m['job']} | {m['steps']} | {m['seconds']:.3f} | {m['steps_per_second']:.2f} | "
                         f"{'%.2fx' % r if r else 'n/a'} | {m['final_loss']:.6g} | {m['ok']}/{m['reps']} | "
                         f"{m['note']}{'; some runs failed: ' + m['failed'] if m['failed'] else ''} |")
        else:
            lines.append(f"| {name} | {m['job']} | | | | | | 0/{m['reps']} | failed: {m['failed']} |")
    return lines


def targets(med):
    lines = ["| ratio (steps/s) | value | target |", "|---|---:|---|"]
    for label, num, den, target in TARGETS:
        r = ratio(med, num, den)
        lines.append(f"| {label} | {'%.2fx' % r if r else 'not measured'} | {target} |")
    return lines


def report(a):
    med = medians(load(a.results))
    body = table(med) + [""] + targets(med)
    print("\n".join(body))
    if not a.out:
        return
    with open(a.machine) as f:
        machine = [l.rstrip("\n") for l in f if l.strip()]
    md = ["# Benchmarks", "",
          "Written by `bench/run.sh` (medians over the repetitions; ratios are taken between rows of the same run).", "",
          "## Machine", ""] + [f"- {l}" for l in machine] + [
          "", "## Command", "", "```", a.command, "```", "",
          "## Results (medians)", ""] + table(med) + ["", "## Issue 5 targets", ""] + targets(med)
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
    s = sub.add_parser("report")
    s.add_argument("results")
    s.add_argument("--machine", required=True)
    s.add_argument("--command", required=True)
    s.add_argument("--micro", nargs="*")
    s.add_argument("--notes", help="markdown appended at the end (e.g. bench/NOTES.md)")
    s.add_argument("--out")
    a = p.parse_args()
    (record if a.cmd == "record" else report)(a)


if __name__ == "__main__":
    sys.exit(main())
