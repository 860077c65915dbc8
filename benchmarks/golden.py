"""Golden decisions: record what the engine decides for generated + sample leads, and compare later.

    python -m benchmarks.golden --write     # record tests/fixtures/golden/decisions.jsonl.gz (from the CURRENT engine)
    python -m benchmarks.golden             # compare the current engine with the recording (exit 1 on a difference)

The recording freezes everything the decisions depend on: the policy files (as bytes), the leads themselves
(so later changes to the generator or to policies/ do not matter) and each `now`. Every decision is compared
as its exact JSON bytes (with --explain: the SHA-256 of those bytes, to keep the file small); invalid leads are compared by their error record.
tests/test_decision_golden.py runs the comparison in the test suite.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "fixtures" / "golden" / "decisions.jsonl.gz"
NOWS = ("2026-11-23T09:00:00+10:00", "2026-12-24T11:30:00+10:00")
GENERATED_PER_NOW = 1000


def canonical(data: Any) -> str:
    """The exact bytes the CLI writes for one JSON Lines record."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def error_record(exc: Exception) -> dict[str, Any]:
    return {"code": getattr(exc, "code", None), "field": getattr(exc, "field", None),
            "message": getattr(exc, "message", str(exc))}


def cases() -> Iterator[tuple[str, dict[str, Any]]]:
    from benchmarks.leadgen import generate_leads

    samples = [json.loads(Path(p).read_text(encoding="utf-8")) for p in sorted(glob.glob(str(ROOT / "scenarios/leads/*.json")))]
    for k, now in enumerate(NOWS):
        for lead in samples:
            yield now, lead
        for lead in generate_leads(GENERATED_PER_NOW, seed=1000 + k, now=now, invalid_rate=0.03):
            yield now, lead


def decide(ps: Any, lead: Any, now: str) -> dict[str, Any]:
    from engine.errors import LeadError

    when = datetime.fromisoformat(now)
    out: dict[str, Any] = {}
    try:
        out["decision"] = canonical(ps.evaluate(lead, when).to_dict())
        explained = canonical(ps.evaluate(lead, when, explain=True).to_dict())
        out["explain_sha256"] = hashlib.sha256(explained.encode("utf-8")).hexdigest()
    except LeadError as exc:
        out["error"] = error_record(exc)
    return out


def policy_files() -> dict[str, bytes]:
    from engine.sources import read_directory

    files, _root = read_directory(ROOT / "policies")
    return files


def write(path: Path = GOLDEN) -> int:
    import engine

    files = policy_files()
    ps = engine.load_policy_files(files, "policies", revision="golden")
    n = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as out:
        out.write(canonical({"files": {k: v.decode("utf-8") for k, v in files.items()}, "root": "policies"}) + "\n")
        for now, lead in cases():
            out.write(canonical({"now": now, "lead": lead, **decide(ps, lead, now)}) + "\n")
            n += 1
    return n


def records(path: Path = GOLDEN) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        rows = [json.loads(line) for line in f]
    return {k: v.encode("utf-8") for k, v in header["files"].items()}, rows


def compare(path: Path = GOLDEN) -> list[str]:
    """Differences between the recording and the current engine (empty list: identical)."""
    import engine

    files, rows = records(path)
    ps = engine.load_policy_files(files, "policies", revision="golden")
    problems = []
    for i, row in enumerate(rows):
        got = decide(ps, row["lead"], row["now"])
        for key in ("decision", "explain_sha256", "error"):
            if got.get(key) != row.get(key):
                problems.append(f"record {i} (lead {row['lead'].get('id')!r}, now {row['now']}): {key} differs\n"
                                f"  expected {str(row.get(key))[:2000]}\n  got      {str(got.get(key))[:2000]}")
    return problems


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="record the current engine's decisions")
    a = p.parse_args(argv)
    if a.write:
        n = write()
        print(f"recorded {n} cases in {GOLDEN.relative_to(ROOT)} ({os.path.getsize(GOLDEN) // 1024} KiB)")
        return
    problems = compare()
    for line in problems[:20]:
        print(line)
    print(f"{len(problems)} differences")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
