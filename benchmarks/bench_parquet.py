"""Issue 13's Parquet row: `leadops eval leads.parquet --out decisions.parquet` vs the JSON Lines rate, same run.

    .venv/bin/python -m benchmarks.bench_parquet               # 100,000 generated leads, --jobs 2, 2 runs each (~60 s)
    .venv/bin/python -m benchmarks.bench_parquet -n 20000      # shorter

The same `benchmarks.leadgen` leads, once as JSON Lines and once as a Parquet file (pyarrow infers the nested
`company` struct and the `activities` / `sla_pauses` lists of structs), are decided by the CLI in its own
process: JSON Lines in -> JSON Lines out, and Parquet in -> Parquet out (flat decision columns,
engine/crm/columns.py). A Parquet file of native leads is read as the leads it holds (nulls absent, nested
lists and structs as they are: `engine.crm.records.plain`), so both runs decide the same leads. After the
timed runs, the Parquet output is checked row by row against the JSON Lines decisions flattened the same way.
The sides run interleaved (`--repeat` times each) and the fastest run of each counts, so a burst of load from
other work on the machine does not decide the ratio; the CPU time of each command's process tree is reported too.
Goal: Parquet rate >= 1.5x the JSON Lines rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.leadgen import generate_leads
from benchmarks.run import NOW_TEXT, leadops_cmd, run_measured


def write_inputs(d: Path, n: int) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(generate_leads(n, seed=13, now=NOW_TEXT))  # with activities, sla_pauses: as the JSON Lines runs
    jsonl = d / "leads.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    parquet = d / "leads.parquet"
    pq.write_table(pa.Table.from_struct_array(pa.array(rows)), parquet)  # the schema of all rows, not the first
    return jsonl, parquet


def same_decisions(jsonl_out: Path, parquet_out: Path) -> int:
    """Rows compared; raises AssertionError at the first Parquet row that differs from the JSON Lines decision."""
    import pyarrow.parquet as pq

    from engine.crm.columns import flatten_decision

    table = pq.read_table(parquet_out).to_pylist()
    with jsonl_out.open() as f:
        expected = [flatten_decision(json.loads(line)) for line in f]
    assert len(table) == len(expected), f"{len(table)} Parquet rows vs {len(expected)} JSON Lines decisions"
    for i, (got, want) in enumerate(zip(table, expected)):
        assert got == want, f"row {i}: {got} != {want}"
    return len(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs of each side, interleaved; the fastest counts")
    ap.add_argument("--format", choices=["text", "json"], default="text")
    args = ap.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        jsonl, parquet = write_inputs(d, args.n)
        common = ["--now", NOW_TEXT, "--jobs", str(args.jobs)]
        runs: dict[str, list[dict[str, float]]] = {"jsonl": [], "parquet": []}
        for _ in range(max(1, args.repeat)):  # interleaved: a burst of load elsewhere hits both sides alike
            runs["jsonl"].append(run_measured([*leadops_cmd(), "eval", str(jsonl), *common, "--out", str(d / "d.jsonl")]))
            runs["parquet"].append(run_measured([*leadops_cmd(), "eval", str(parquet), *common,
                                                 "--out", str(d / "d.parquet")]))
        rows = same_decisions(d / "d.jsonl", d / "d.parquet")
    j, p = (min(runs[side], key=lambda r: r["wall_s"]) for side in ("jsonl", "parquet"))
    result = {"leads": args.n, "jobs": args.jobs, "repeat": args.repeat, "jsonl_s": j["wall_s"], "parquet_s": p["wall_s"],
              "jsonl_leads_per_s": args.n / j["wall_s"], "parquet_leads_per_s": args.n / p["wall_s"],
              "ratio": j["wall_s"] / p["wall_s"], "rows_checked": rows,
              "jsonl_cpu_s": j["cpu_s"], "parquet_cpu_s": p["cpu_s"], "cpu_ratio": j["cpu_s"] / p["cpu_s"],
              "all_wall_s": {side: [r["wall_s"] for r in rs] for side, rs in runs.items()},
              "load_average": {"before": load_before, "after": os.getloadavg()}}
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.n:,} leads, --jobs {args.jobs}, fastest of {args.repeat}: JSON Lines {result['jsonl_s']:.2f} s "
              f"({result['jsonl_leads_per_s']:,.0f}/s), Parquet {result['parquet_s']:.2f} s "
              f"({result['parquet_leads_per_s']:,.0f}/s): Parquet rate = {result['ratio']:.2f}x JSON Lines "
              f"(goal >= 1.5x; CPU {result['jsonl_cpu_s']:.1f} s vs {result['parquet_cpu_s']:.1f} s = "
              f"{result['cpu_ratio']:.2f}x); {rows:,} rows identical; load average "
              f"{load_before[0]:.2f} before, {result['load_average']['after'][0]:.2f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
