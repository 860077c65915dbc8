"""Hostile input cost: strict JSON parse time vs size for adversarial shapes, and one decision for a lead with
many activities under a per-activity filter that calls activity helpers (issue 17).

    .venv/bin/python -m benchmarks.bench_hostile            # table of ns/byte per shape and size (~20 s)
    .venv/bin/python -m benchmarks.bench_hostile --json out.json

Linear means the time per byte stays flat as the input grows; the last column is the ratio of ns/byte at the
largest size to the smallest (≈1 when linear; a quadratic parser doubles it with every doubling of size).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from engine.jsonstrict import loads

EXAMPLE_POLICIES = Path(__file__).resolve().parent.parent / "policies"

SIZES = (64_000, 256_000, 1_000_000, 4_000_000)


def _repeat_to(size: int, head: str, item: Callable[[int], str], tail: str, sep: str = ",") -> str:
    parts, n, i = [head], len(head) + len(tail), 0
    while n < size:
        text = item(i)
        parts.append(("" if i == 0 else sep) + text)
        n += len(text) + 1
        i += 1
    return "".join(parts) + tail


SHAPES: dict[str, Callable[[int], str]] = {
    "wide object, unique short keys": lambda size: _repeat_to(size, "{", lambda i: f'"k{i}":1', "}"),
    "wide object, key repeated at the end": lambda size: _repeat_to(size, "{", lambda i: f'"k{i}":1', ',"k0":2}'),
    "many objects, each repeating a key": lambda size: _repeat_to(size, "[", lambda i: '{"a":1,"a":2}', "]"),
    "deep nesting (500 levels), side by side": lambda size: _repeat_to(size, "[", lambda i: "[" * 500 + "]" * 500, "]"),
    "nesting past the depth limit": lambda size: "[" * size,
    "one long string with escapes": lambda size: '"' + "a\\u00e9\\n" * (size // 9) + '"',
    "long string ending in a lone surrogate": lambda size: '"' + "a" * size + '\\ud800"',
    "many small arrays": lambda size: _repeat_to(size, "[", lambda i: f"[{i},{i}]", "]"),
}


def time_parse(text: str, rounds: int = 3) -> float:
    """Best-of-N seconds to parse (or reject) one document."""
    best = float("inf")
    data = text.encode("utf-8")
    for _ in range(rounds):
        start = time.perf_counter()
        try:
            loads(data)
        except (ValueError, RecursionError):
            pass
        best = min(best, time.perf_counter() - start)
    return best


def json_table() -> list[dict]:
    rows = []
    for name, make in SHAPES.items():
        row: dict = {"shape": name, "ns_per_byte": {}, "ms": {}}
        for size in SIZES:
            text = make(size)
            seconds = time_parse(text)
            row["ms"][size] = round(seconds * 1000, 2)
            row["ns_per_byte"][size] = round(seconds * 1e9 / len(text), 1)
        per_byte = list(row["ns_per_byte"].values())
        row["growth"] = round(per_byte[-1] / per_byte[0], 2) if per_byte[0] else 0.0
        rows.append(row)
    return rows


def activity_decision(n: int = 10_000) -> dict:
    """One decision for a lead with `n` page views under a filter that calls count_activities per activity."""
    import engine

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(EXAMPLE_POLICIES, root / "policies")
        shutil.copytree(EXAMPLE_POLICIES.parent / "schemas", root / "schemas")
        scoring = (root / "policies" / "scoring.yaml").read_text()
        scoring = scoring.replace('startswith(activity.url, "/pricing")',
                                  'count_activities("page_view") >= 0 and startswith(activity.url, "/pricing")', 1)
        (root / "policies" / "scoring.yaml").write_text(scoring)
        ps = engine.load_policies(root / "policies")
    now = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
    lead = {"id": "L", "email": "a@b.co", "activities": [
        {"type": "page_view", "at": (now - timedelta(minutes=i)).isoformat(), "url": "/pricing" if i % 2 else "/"}
        for i in range(n)]}  # fmt: skip
    start = time.perf_counter()
    ps.evaluate(lead, now)
    return {"activities": n, "ms": round((time.perf_counter() - start) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the raw figures to this file")
    args = parser.parse_args()
    rows = json_table()
    header = "| shape | " + " | ".join(f"{s // 1000:,} kB ms (ns/B)" for s in SIZES) + " | growth |"
    print(header)
    print("|---|" + "---:|" * (len(SIZES) + 1))
    for row in rows:
        cells = [f"{row['ms'][s]} ({row['ns_per_byte'][s]})" for s in SIZES]
        print(f"| {row['shape']} | " + " | ".join(cells) + f" | {row['growth']} |")
    decision = activity_decision()
    print(f"\none decision, {decision['activities']:,} page views, per-activity filter calling count_activities: "
          f"{decision['ms']} ms")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"json": rows, "activity_decision": decision}, out, indent=2)


if __name__ == "__main__":
    main()
