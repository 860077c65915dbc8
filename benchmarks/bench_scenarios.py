"""Replay rate of the scenario runner: generate N scenarios (default 10,000) and replay them.

Not a timed test: run it by hand and read the rate.

    .venv/bin/python benchmarks/bench_scenarios.py [--count 10000] [--policies policies]

Scenarios are generated from the sample leads in scenarios/leads/ (ids, sizes, countries and activity dates
varied) with expectations taken from a first evaluation, so the replay exercises the same path as
`leadops test`: evaluate without a trace, check every expectation, and (never here) explain failures.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import engine  # noqa: E402
from engine import scenarios as sc  # noqa: E402
from engine.errors import Location  # noqa: E402

COUNTRIES = ["AU", "AU", "AU", "NZ", "SG", "GB", "US", "DE", "BR", "CN"]
STATES = ["QLD", "NSW", "VIC", "WA", None]


def generate(ps: engine.PolicySet, count: int, seed: int = 7) -> list[sc.Scenario]:
    rng = random.Random(seed)
    bases = [json.loads(p.read_text()) for p in sorted((ROOT / "scenarios" / "leads").glob("*.json"))]
    base_now = datetime.fromisoformat("2026-11-23T09:00:00+10:00")
    out = []
    for i in range(count):
        lead = copy.deepcopy(bases[i % len(bases)])
        lead["id"] = f"BENCH-{i}"
        lead["country"] = rng.choice(COUNTRIES)
        state = rng.choice(STATES)
        if state:
            lead["state"] = state
        lead["employees"] = rng.choice([5, 50, 99, 101, 400, 999, 1000, 5000])
        now = base_now + timedelta(hours=rng.randrange(0, 24 * 21))
        decision = ps.evaluate(lead, now).to_dict()
        expect = sc.expectations_for(decision)
        exps = [sc.Expectation(k, v, Location("bench.yaml", i + 1, 1)) for k, v in expect.items()]
        out.append(sc.Scenario(name=f"bench {i}", file="bench.yaml", line=i + 1, index=i, now=now, lead=lead,
                               expect=exps))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--policies", default=str(ROOT / "policies"))
    args = ap.parse_args()
    ps = engine.load_policies(args.policies)
    t0 = time.perf_counter()
    scenarios = generate(ps, args.count)
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = sc.run(ps, scenarios)
    took = time.perf_counter() - t0
    checks = sum(len(s.expect) for s in scenarios)
    print(f"generated {len(scenarios)} scenarios in {gen:.2f}s")
    print(f"replayed {len(scenarios)} scenarios ({checks} expectations) in {took:.2f}s: "
          f"{len(scenarios) / took:,.0f} scenarios/s")
    print(sc.summary_line(results))
    if any(not r.ok for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
