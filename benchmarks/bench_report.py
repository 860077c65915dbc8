"""Benchmark of `leadops report`: leads with ~10 activities each -> tables, JSON and the Parquet fact table.

    .venv/bin/python -m benchmarks.bench_report                      # 100,000 leads (and 20,000 for the slope)
    .venv/bin/python -m benchmarks.bench_report --leads 1000000      # the issue's size (generation alone ~3 min)

The leads come from benchmarks/historygen.py (stage, owner and activity history; `--extra-activities` page views
bring the mean to ~10 activities per lead). Generation is not timed. Each size runs
`leadops report FILE --rev HEAD --now … --format json --facts OUT.parquet --jobs J` in a fresh process: wall
time, and peak RSS (the largest process of the tree, from getrusage(RUSAGE_CHILDREN) of a small wrapper).
From two sizes it prints the per-lead slope and the projected time for `--target` leads (default 1,000,000):
startup + slope x target. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.historygen import write_histories

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-27T17:00:00+10:00"
WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
           "u = resource.getrusage(resource.RUSAGE_CHILDREN); print(r.returncode, u.ru_maxrss, u.ru_utime + u.ru_stime)")


def run(path: Path, jobs: int, out: Path) -> tuple[float, int, float]:
    """(wall seconds, peak RSS in MB, CPU seconds of every process) of one `leadops report` run."""
    cmd = [str(Path(sys.executable).parent / "leadops"), "report", str(path), "--rev", "HEAD", "--now", NOW,
           "--format", "json", "--facts", str(out), "--jobs", str(jobs)]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True, cwd=ROOT, check=True)
    wall = time.perf_counter() - start
    code, rss, cpu = done.stdout.split()
    if code != "0":
        raise SystemExit(f"leadops report exited {code}: {done.stderr}")
    return wall, int(rss) // 1024, float(cpu)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--leads", type=int, default=100_000)
    p.add_argument("--target", type=int, default=1_000_000, help="project the time for this many leads")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--extra-activities", type=float, default=6.4, help="page views added per lead (mean)")
    p.add_argument("--json", help="also write the figures here")
    a = p.parse_args(argv)
    sizes = sorted({max(1000, a.leads // 5), a.leads})
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"leads-{n}.jsonl"
            activities = write_histories(str(path), n, seed=17, now=NOW, extra_activities=a.extra_activities)
            wall, rss, cpu = run(path, a.jobs, Path(tmp) / "facts.parquet")
            import pyarrow.parquet as pq

            rows = pq.read_metadata(Path(tmp) / "facts.parquet").num_rows
            figures.append({"leads": n, "activities": activities, "fact_rows": rows, "wall_s": round(wall, 2),
                            "leads_per_s": round(n / wall), "cpu_s": round(cpu, 2), "peak_rss_mb": rss, "jobs": a.jobs})
            print(f"{n:>10,} leads  {activities:>11,} activities  {rows:>9,} SLA rows  {wall:7.1f} s wall  "
                  f"{cpu:7.1f} s CPU  {n / wall:8,.0f} leads/s  peak RSS {rss:,} MB", flush=True)
            path.unlink()
    if len(figures) == 2:
        (s, b) = figures
        slope = (b["wall_s"] - s["wall_s"]) / (b["leads"] - s["leads"])
        startup = max(0.0, s["wall_s"] - slope * s["leads"])  # noise on a shared machine can make it negative
        projected = startup + slope * a.target
        cpu_slope = (b["cpu_s"] - s["cpu_s"]) / (b["leads"] - s["leads"])
        idle = startup + cpu_slope * a.target / a.jobs  # what `jobs` idle cores would take: CPU work shared out
        print(f"wall slope {slope * 1e6:,.1f} µs/lead, startup {startup:.1f} s -> projected {a.target:,} leads: "
              f"{projected:,.0f} s on this machine now; CPU {cpu_slope * 1e6:,.1f} µs/lead -> {idle:,.0f} s on "
              f"{a.jobs} idle cores")
        figures.append({"projected_leads": a.target, "projected_wall_s": round(projected, 1),
                        "projected_idle_s": round(idle, 1), "cpu_us_per_lead": round(cpu_slope * 1e6, 1)})
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
