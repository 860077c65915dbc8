"""Where a lead's time goes on the batch path: a workload to sample with py-spy, and a summary of the samples.

    py-spy record -r 1000 -f raw -o /tmp/eval.txt -- .venv/bin/python -m benchmarks.profile eval -n 20000
    .venv/bin/python -m benchmarks.profile top /tmp/eval.txt          # markdown: top self / inclusive frames

`eval` runs `engine.batch.evaluate_lines` in this process (--jobs 1: parse, validate, decide, serialize) over
the first N leads of the benchmark's seeded JSON Lines file, after loading the policies, so the samples are
the per-lead path and not start-up. `diff` does the same for `engine.impact.analyse` (base = head = the
example policies). py-spy and pyinstrument are profiling tools, not project dependencies
(`uv pip install -p .venv/bin/python py-spy`).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime.fromisoformat("2026-11-23T09:00:00+10:00")


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def workload(kind: str, n: int) -> None:
    import engine
    from benchmarks.run import leads_file
    from engine.sources import read_directory

    path = leads_file(100_000)
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        lines = [(i, line) for i, line in zip(range(1, n + 1), f)]
    files, root = read_directory(ROOT / "policies")
    ps = engine.load_policy_files(files, root, revision="profile")
    if kind == "eval":
        from engine.batch import evaluate_lines

        evaluate_lines(ps, lines, _Discard(), NOW, jobs=1, progress=False)
    else:
        from engine.impact import analyse

        analyse(ps, ps, ((str(i), t) for i, t in lines), NOW, [], jobs=1, progress=False)


def top(raw: str, count: int = 15, root: str = "evaluate_lines") -> str:
    """Markdown table of a py-spy raw (collapsed stacks) file: the top self and inclusive frames among the
    samples under `root` (the workload's entry, so start-up and policy loading are left out), as shares of it."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in Path(raw).read_text(encoding="utf-8").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = [f.split(" (")[0] + _where(f) for f in stack.split(";")]
        names = [f.split(" (")[0] for f in frames]
        if root not in names:
            continue
        frames = frames[names.index(root):]
        total += int(n)
        own[frames[-1]] += int(n)
        for f in set(frames):
            inclusive[f] += int(n)
    rows = ["| self | function | | inclusive | function |", "|---:|---|---|---:|---|"]
    for (f, c), (g, d) in zip(own.most_common(count), inclusive.most_common(count)):
        rows.append(f"| {100 * c / total:.1f} % | `{f}` | | {100 * d / total:.1f} % | `{g}` |")
    return f"{total:,} samples under `{root}`\n\n" + "\n".join(rows)


def _where(frame: str) -> str:
    """' (file)' without the line number, shortened to the project or library path."""
    if " (" not in frame:
        return ""
    path = frame.split(" (", 1)[1].rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f" ({path})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for kind in ("eval", "diff"):
        w = sub.add_parser(kind, help=f"the {kind} workload (sample it with py-spy)")
        w.add_argument("-n", type=int, default=20_000, help="leads (default 20,000)")
    t = sub.add_parser("top", help="summarise a py-spy raw file")
    t.add_argument("raw")
    t.add_argument("--count", type=int, default=15)
    t.add_argument("--root", default="evaluate_lines", help="the workload's entry frame (diff: analyse)")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if a.cmd == "top":
        print(top(a.raw, a.count, a.root))
    else:
        workload(a.cmd, a.n)


if __name__ == "__main__":
    main()
