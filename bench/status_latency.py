#!/usr/bin/env python3
"""`trainer status JOB` end to end on a 3-silo cluster, idle and while jobs train (issue 17).

  /usr/bin/python3 bench/status_latency.py [--calls 7] [--jobs 2] [--out FILE.md] [--results FILE.jsonl]

Builds through `deploy/local/cluster.sh build`, starts 3 silos with `cluster.sh start 3` (honouring
TRAINER_BASE_*_PORT and TRAINER_SILO_NICE, default cluster.sh's: what a user gets; TRAINER_CLUSTER_DIR,
default a folder of its own under artifacts/bench/), then times --calls calls of each client:
  tiered    the client as built (src/Trainer.Client/bin/Release/net10.0/trainer.dll, tiered compilation on);
  full JIT  the same with DOTNET_TieredCompilation=0, as the client was built before issue 17;
in these phases, every call of every client and silo priority interleaved so that drift in the
machine's load hits them all alike:
  idle        the status of a finished job, nothing training;
  load        the status of a running job while --jobs long jobs train (the seed model, 3 workers each);
  load nice 0 the same with the silos reniced to 0 (threads and autogroup) between calls, back after:
              what cluster.sh's nice value buys. Skipped where this user may not raise the silos'
              priority again, or when the silos already run at nice 0.
A call's wall time runs from the process's start to its exit; its CPU time is the user + system time
the kernel accounted to it (all its threads). `--verbose` splits the wall time: start-up until connected,
the job grain's answer, and the rest (printing, stopping the client, the runtime's exit). Every call's
output is checked (the job's id and state). The jobs are cancelled and the silos stopped at the end.
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "deploy", "local", "cluster.sh")
TRAINER = os.path.join(ROOT, "src", "Trainer.Client", "bin", "Release", "net10.0", "trainer.dll")
CLIENTS = {"tiered": {}, "full JIT": {"DOTNET_TieredCompilation": "0"}}
# Far more steps than the bench lasts: the jobs are cancelled at the end.
LONG_JOB = ["--workers", "3", "--steps", "100000000"]


def run(args, timeout=600, check=True, env=None):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    if check and result.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def trainer(*args, gateway, check=True, client="tiered"):
    return run(["dotnet", TRAINER, *args, "--gateway", gateway], check=check, env=dict(os.environ, **CLIENTS[client]))


def timed_status(client, job, state, gateway):
    """One `trainer status JOB --verbose`: wall, CPU, start-up until connected and the job's answer (s), its output checked."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = trainer("status", job, "--verbose", gateway=gateway, check=False, client=client)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    connected = re.search(r"\((\d+) ms since this process started", result.stderr)
    answered = re.search(r"the job answered in (\d+) ms", result.stderr)
    if result.returncode != 0 or not result.stdout.startswith(job) or f" {state} " not in result.stdout or not (connected and answered):
        raise RuntimeError(f"{client}: `trainer status {job}` printed no {state} line (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, int(connected.group(1)) / 1000, int(answered.group(1)) / 1000


def wait_for(what, probe, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} not within {timeout} s")


def status_json(job, gateway):
    return json.loads(trainer("status", job, "--json", gateway=gateway).stdout)


def silo_pids():
    folder = os.environ["TRAINER_CLUSTER_DIR"]
    return [open(os.path.join(folder, f"silo-{i}.pid")).read().strip() for i in range(3)]


def nice_of(pid):
    """A process's nice value as the kernel has it (field 19 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def renice_silos(value):
    """Every thread of every silo, and each silo's autogroup, to nice `value`."""
    for pid in silo_pids():
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                os.setpriority(os.PRIO_PROCESS, int(tid), value)
            except ProcessLookupError:
                pass  # a thread that ended meanwhile
        if os.path.exists(f"/proc/{pid}/autogroup"):
            with open(f"/proc/{pid}/autogroup", "w") as f:
                f.write(str(value))


def measure(cases, job, state, calls, gateway, results):
    """cases: (phase, silo nice or None) pairs; each call takes every case and client once, in turn."""
    for i in range(calls):
        for phase, nice in cases:
            if nice is not None:
                renice_silos(nice)
            for client in CLIENTS:
                wall, cpu, connected, answered = timed_status(client, job, state, gateway)
                results.append({"phase": phase, "client": client, "call": i + 1, "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
                                "connected_seconds": connected, "answer_seconds": answered, "load_average": os.getloadavg()[0]})
                print(f"[status] {phase:<11} {client:<8} call {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU, connected at {connected:.2f} s, "
                      f"answer {answered:.2f} s", file=sys.stderr)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        return next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "unknown")


def report(results, jobs, nice, load_start, load_end):
    lines = ["## `trainer status` end to end", "",
             f"`bench/status_latency.py`: 3 silos (`deploy/local/cluster.sh start 3`, silos at nice {nice}), {jobs} jobs training in the load phases; "
             "calls interleaved; wall from process start to exit, CPU = user + system of the process; connected = wall until the client "
             "had connected, answer = the job grain's reply, rest = wall - connected - answer. "
             f"CPU: {cpu_model()}, {os.cpu_count()} cores; load average (1 min) {load_start:.1f} at the start, {load_end:.1f} at the end.", "",
             "| phase | client | calls | median wall s | wall min-max s | median CPU s | median connected s | median answer s | median rest s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for phase in dict.fromkeys(r["phase"] for r in results):
        for client in CLIENTS:
            runs = [r for r in results if r["phase"] == phase and r["client"] == client]
            med = lambda key: statistics.median(r[key] for r in runs)
            rest = statistics.median(r["wall_seconds"] - r["connected_seconds"] - r["answer_seconds"] for r in runs)
            walls = [r["wall_seconds"] for r in runs]
            lines.append(f"| {phase} | {client} | {len(runs)} | **{med('wall_seconds'):.2f}** | {min(walls):.2f}-{max(walls):.2f} | {med('cpu_seconds'):.2f} | "
                         f"{med('connected_seconds'):.2f} | {med('answer_seconds'):.2f} | {rest:.2f} |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=7, help="calls per client and phase (medians are taken over them)")
    p.add_argument("--jobs", type=int, default=2, help="long jobs training during the load phases")
    p.add_argument("--out", help="markdown written at the end")
    p.add_argument("--results", help="one JSON line per call")
    a = p.parse_args()

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    os.environ.setdefault("TRAINER_CLUSTER_DIR", os.path.join(ROOT, "artifacts", "bench", f"status-{stamp}", "cluster"))
    port = int(os.environ.get("TRAINER_BASE_GATEWAY_PORT", "30000"))
    gateway = ",".join(f"127.0.0.1:{port + i}" for i in range(3))
    run(["bash", SCRIPT, "build"], timeout=1800)
    load_start = os.getloadavg()[0]
    run(["bash", SCRIPT, "start", "3"])
    nice = nice_of(silo_pids()[0])
    results, jobs = [], []
    try:
        # idle: a job that has ended, so nothing trains.
        done = trainer("submit", "--steps", "10", gateway=gateway).stdout.strip()
        jobs.append(done)
        wait_for(f"job {done} to complete", lambda: status_json(done, gateway)["state"] == "completed")
        measure([("idle", None)], done, "completed", a.calls, gateway, results)
        for _ in range(a.jobs):
            jobs.append(trainer("submit", *LONG_JOB, gateway=gateway).stdout.strip())
        for job in jobs[1:]:
            wait_for(f"job {job} to train", lambda job=job: status_json(job, gateway)["steps"] > 0)
        cases = [("load", nice)]
        try:
            renice_silos(0)
            renice_silos(nice)
            if nice != 0:
                cases.append(("load nice 0", 0))
        except PermissionError:
            print("[status] may not raise the silos' priority again: no 'load nice 0' phase", file=sys.stderr)
        measure(cases, jobs[1], "running", a.calls, gateway, results)
        renice_silos(nice)
    finally:
        for job in jobs[1:]:
            trainer("cancel", job, gateway=gateway, check=False)
        run(["bash", SCRIPT, "stop"], check=False)
    lines = report(results, a.jobs, nice, load_start, os.getloadavg()[0])
    print("\n".join(lines))
    if a.results:
        with open(a.results, "w") as f:
            f.writelines(json.dumps(dict(r, cpu=cpu_model())) + "\n" for r in results)
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
