"""What a mapping costs on the batch path: the same leads decided natively and through the HubSpot and
Salesforce presets (engine.batch.evaluate_items, one process, interleaved rounds, best of each).

    .venv/bin/python -m benchmarks.bench_crm            # 2,000 leads per CRM, best of 5 (~40 s on 2 busy cores)
    .venv/bin/python -m benchmarks.bench_crm -n 500 -r 3

Two comparisons per CRM, both on the example policy at the example data's `now`:
  in memory  records already read (dicts): native leads vs the CRM records (CSV-export rows with the joined
             engagements / tasks), i.e. `to_lead` + the unused-field check + the decision vs the decision alone;
  from files the native leads as JSON Lines (`evaluate_lines`) vs the CRM export CSV + activities CSV
             (`read_records`, join, map, decide) — what `leadops eval` does, minus process start-up.
The goal (issue 12): mapping adds at most 25 % to a decision's cost.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import engine
from engine.batch import evaluate_items, evaluate_lines
from engine.crm import load_mapping
from engine.crm.pipeline import read_activities, source_items
from engine.crm.synth import crm_records, csv_text, native_leads, strip_private
from engine.policyset import parse_instant

ROOT = Path(__file__).resolve().parent.parent
NOW = parse_instant("2026-11-23T09:00:00+10:00")


def best(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench(crm: str, n: int, rounds: int) -> dict[str, float]:
    ps = engine.load_policies(ROOT / "policies")
    mapping = load_mapping(crm, ps)
    leads = native_leads(n, 12, crm)
    natives = [strip_private(lead) for lead in leads]
    records, activities = crm_records(crm, mapping, leads, "export", 12)
    records = [{k: str(v) for k, v in r.items()} for r in records]  # as csv.DictReader gives them
    joined: dict[str, list[Any]] = {}
    for row, act in enumerate(activities, 2):
        joined.setdefault(mapping.join_key(act), []).append((row, {k: str(v) for k, v in act.items()}))
    mapped_items = [(i, (r, joined.get(lead["id"]))) for i, (r, lead) in enumerate(zip(records, leads), 2)]
    native_items = list(enumerate(natives, 1))
    sink: list[Any] = []
    gc.collect()
    gc.freeze()  # the held test data is not scanned by every collection (the CLI streams it instead of holding it)

    def native() -> None:
        sink.clear()  # decisions are dropped between rounds
        assert evaluate_items(ps, native_items, sink.append, NOW, jobs=1).failed == 0

    def mapped() -> None:
        sink.clear()
        assert evaluate_items(ps, mapped_items, sink.append, NOW, jobs=1, mapping=mapping).failed == 0

    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "leads.jsonl"
        jsonl.write_text("".join(json.dumps(x) + "\n" for x in natives), encoding="utf-8")
        export, acts_csv = Path(tmp) / "export.csv", Path(tmp) / "acts.csv"
        export.write_text(csv_text(records), encoding="utf-8")
        acts_csv.write_text(csv_text(activities), encoding="utf-8")

        def native_file() -> None:
            with jsonl.open(encoding="utf-8") as stream:
                assert evaluate_lines(ps, enumerate(stream, 1), io.StringIO(), NOW, jobs=1, progress=False)[1] == 0

        def mapped_file() -> None:
            acts = read_activities(str(acts_csv), mapping)
            items = source_items(str(export), mapping, None, None, acts)
            assert evaluate_items(ps, items, io.StringIO().write, NOW, jobs=1, mapping=mapping).failed == 0

        runs: dict[str, list[float]] = {"native": [], "mapped": [], "native_file": [], "mapped_file": []}
        fns = {"native": native, "mapped": mapped, "native_file": native_file, "mapped_file": mapped_file}
        for _ in range(rounds):  # interleaved, so that a busy machine slows both sides alike
            for name, fn in fns.items():
                runs[name].append(best(fn, 1))
    return {name: min(times) / n * 1e6 for name, times in runs.items()}  # µs per decision, best round


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-r", "--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{args.n} leads per CRM, one process, best of {args.rounds}; µs per decision")
    print("| CRM | native (in memory) | mapped | overhead | native JSONL file | export CSV + activities | overhead |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for crm in ("hubspot", "salesforce"):
        f = bench(crm, args.n, args.rounds)
        print(f"| {crm} | {f['native']:.0f} | {f['mapped']:.0f} | {f['mapped'] / f['native'] - 1:+.0%} | "
              f"{f['native_file']:.0f} | {f['mapped_file']:.0f} | {f['mapped_file'] / f['native_file'] - 1:+.0%} |")


if __name__ == "__main__":
    main()
