"""Optimisations must not change a single byte: decisions recorded from the engine before the hot paths were
rewritten (2,000 generated leads + the 14 samples, two `now`s, with and without --explain, invalid leads
included) must come out identical. Re-record with `python -m benchmarks.golden --write` only when a decision
is meant to change (and say so in the commit)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package

from benchmarks import golden


def test_decisions_match_the_recording() -> None:
    problems = golden.compare()
    assert not problems, f"{len(problems)} decisions differ from the recording:\n" + "\n".join(problems[:5])
