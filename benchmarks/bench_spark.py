"""Spark vs `leadops eval` on the same leads, in the same run: Parquet -> Parquet through Spark local[N].

    .venv/bin/python -m benchmarks.bench_spark                 # 1,000,000 leads
    .venv/bin/python -m benchmarks.bench_spark -n 100000       # a smaller run on a busy machine
    .venv/bin/python -m benchmarks.bench_spark -n 100000 --json /tmp/bench-spark.json

The leads are benchmarks/leadgen.py's seeded leads (seed 7, all valid: a typed table cannot hold a lead whose
`employees` is "lots", and Spark's schema inference would type the whole column as strings for it). `leadops eval`
reads them as JSON Lines on every core (`--jobs N`, output to /dev/null); Spark reads the same leads as a typed
Parquet table (converted once, cached in the temp directory, not timed) and writes decisions + errors as Parquet. Reported: wall
times, leads/s, the Spark/eval ratio, the rate per executor core and the sizing rule derived from it. The session
start (JVM, ~5-15 s) is measured apart: a cluster pays it once per job, not per lead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import NOW_TEXT, ROOT, cpu_model, log, run_batch


def leads_file(n: int) -> Path:
    """n valid seeded leads as JSON Lines (cached in the temp directory)."""
    from benchmarks.leadgen import write_jsonl

    path = Path(tempfile.gettempdir()) / f"leadops-bench-leads-{n}-seed7-valid.jsonl"
    if not path.exists():
        log(f"writing {n} leads to {path}")
        write_jsonl(str(path) + ".tmp", n, seed=7, now=NOW_TEXT)
        os.replace(str(path) + ".tmp", path)
    return path


def parquet_file(spark: Any, jsonl: Path, n: int) -> Path:
    """The same leads as a typed Parquet table (Spark's JSON schema inference)."""
    path = Path(tempfile.gettempdir()) / f"leadops-bench-leads-{n}-seed7-valid.parquet"
    if not path.exists():
        log(f"converting {jsonl} to {path}")
        spark.read.json(str(jsonl)).write.parquet(str(path) + ".tmp")
        os.replace(str(path) + ".tmp", path)
    return path


def signed_bundle(tmp: Path) -> tuple[Path, Path]:
    import engine
    from engine.bundle import build_bundle
    from engine.signing import generate_keypair, sign_bundle

    keys = generate_keypair(tmp / "keys", "bench")
    ps = engine.load_policies(ROOT / "policies")
    bundle = tmp / "bundle.tar.gz"
    bundle.write_bytes(sign_bundle(build_bundle(ps.source_files, ps.revision, policy_version="bench"),
                                   keys.private_path, keys.key_id))
    return bundle, keys.public_path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=1_000_000, help="leads (default 1,000,000)")
    p.add_argument("--cores", type=int, default=2, help="local[N] for Spark and --jobs N for leadops eval")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)
    from engine.spark import decide, local_session, read_table

    jsonl = leads_file(args.n)
    with tempfile.TemporaryDirectory(prefix="leadops-bench-spark-") as tmp_name:
        tmp = Path(tmp_name)
        bundle, key = signed_bundle(tmp)
        t0 = time.perf_counter()
        spark = local_session(f"local[{args.cores}]", shuffle_partitions=args.cores)
        session_s = time.perf_counter() - t0
        parquet = parquet_file(spark, jsonl, args.n)
        rows = spark.read.parquet(str(parquet)).count()

        log(f"leadops eval: {args.n} leads, --jobs {args.cores}")
        evaluated = run_batch(jsonl, args.cores)

        log(f"spark: {rows} leads Parquet -> Parquet on local[{args.cores}]")
        out = tmp / "out"
        t0 = time.perf_counter()
        result = decide(read_table(spark, str(parquet)).df, bundle, key, NOW_TEXT)
        decided, failed = result.write(str(out))
        spark_s = time.perf_counter() - t0
        result.close()
        assert decided + failed == rows, (decided, failed, rows)
        spark.stop()
        shutil.rmtree(out, ignore_errors=True)

    eval_rate = args.n / evaluated["wall_s"]
    spark_rate = rows / spark_s
    per_core = spark_rate / args.cores
    figures = {
        "leads": args.n, "parquet_rows": rows, "cores": args.cores, "cpu": cpu_model(),
        "load_average_1m": os.getloadavg()[0],
        "eval_wall_s": round(evaluated["wall_s"], 2), "eval_leads_per_s": round(eval_rate),
        "spark_session_start_s": round(session_s, 2), "spark_wall_s": round(spark_s, 2),
        "spark_leads_per_s": round(spark_rate), "spark_decisions": decided, "spark_errors": failed,
        "spark_to_eval_time_ratio": round(spark_s / evaluated["wall_s"], 2),
        "spark_leads_per_s_per_executor_core": round(per_core),
        "sizing_10m_leads_16_cores_min": round(10_000_000 / (per_core * 16) / 60, 1),
    }
    print(f"""
leads                              {args.n:>12,}   ({rows:,} in Parquet: {decided:,} decisions, {failed:,} errors)
leadops eval --jobs {args.cores}                {evaluated['wall_s']:>10.1f} s   {eval_rate:>9,.0f} leads/s
spark local[{args.cores}] Parquet -> Parquet     {spark_s:>10.1f} s   {spark_rate:>9,.0f} leads/s   (+ {session_s:.1f} s session start)
spark / eval wall time             {spark_s / evaluated['wall_s']:>12.2f}
per executor core                  {per_core:>12,.0f} leads/s
sizing: 10,000,000 / ({per_core:,.0f} x 16 cores) = {10_000_000 / (per_core * 16):,.0f} s = {figures['sizing_10m_leads_16_cores_min']} min
load average (1 min) at the end    {figures['load_average_1m']:>12.1f}
""")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
