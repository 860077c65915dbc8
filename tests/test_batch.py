"""engine.batch: JSON Lines on every core, in input order, with bounded memory, error records for bad lines."""

from __future__ import annotations

import io
import json
from datetime import datetime

import pytest
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not an installed package
from click.testing import CliRunner

import cli
import engine
from benchmarks.leadgen import generate_leads
from engine import render
from engine.batch import error_record, evaluate_lines
from engine.errors import LeadError
from engine.sources import read_directory

NOW = datetime.fromisoformat("2026-11-23T09:00:00+10:00")


@pytest.fixture(scope="module")
def ps() -> engine.PolicySet:
    files, root = read_directory("policies")
    return engine.load_policy_files(files, root, revision="batch-test")


def numbered_lines(n: int = 300) -> list[tuple[int, str]]:
    """Generated leads with invalid leads, malformed JSON, a non-object and blank lines mixed in."""
    lines = [json.dumps(lead) for lead in generate_leads(n, seed=5, now=NOW, invalid_rate=0.05)]
    lines[3] = '{"id": "broken", '
    lines[10] = ""
    lines[11] = "   "
    lines[20] = "[1, 2, 3]"
    lines[21] = '"just a string"'
    lines[30] = "[" * 100_000  # nesting deeper than the JSON decoder's recursion limit
    return [(i, text + "\n") for i, text in enumerate(lines, 1)]


def serial(ps: engine.PolicySet, lines: list[tuple[int, str]], explain: bool = False) -> tuple[str, int, int]:
    """What the pre-batch CLI loop wrote, line by line."""
    from engine.batch import lead_json_error
    from engine.jsonstrict import Decoder

    loads = Decoder(nonfinite=True).decode
    out, total, failed = [], 0, 0
    for number, text in lines:
        if not text.strip():
            continue
        total += 1
        raw = None
        try:
            raw = loads(text)
            out.append(render.to_json(ps.evaluate(raw, NOW, explain=explain).to_dict(), pretty=False))
        except (ValueError, LeadError, RecursionError) as exc:
            failed += 1
            lead_id = raw.get("id") if isinstance(raw, dict) else None
            out.append(render.to_json(error_record(number, lead_json_error(exc), lead_id), pretty=False))
    return "".join(line + "\n" for line in out), total, failed


@pytest.mark.parametrize("jobs", [1, 2])
def test_output_is_the_serial_output_in_input_order(ps: engine.PolicySet, jobs: int) -> None:
    lines = numbered_lines()
    expected, total, failed = serial(ps, lines)
    out = io.StringIO()
    got_total, got_failed = evaluate_lines(ps, lines, out, NOW, jobs=jobs, chunk_size=16, progress=False)
    assert out.getvalue() == expected
    assert (got_total, got_failed) == (total, failed)
    non_blank = sum(1 for _, text in lines if text.strip())
    assert got_total == non_blank == len(out.getvalue().splitlines())  # counts in = counts out
    assert failed >= 5


def test_explain_and_workers_use_the_parents_policy_files_and_revision(ps: engine.PolicySet) -> None:
    lines = numbered_lines(60)
    out = io.StringIO()
    evaluate_lines(ps, lines, out, NOW, explain=True, jobs=2, chunk_size=8, progress=False)
    assert out.getvalue() == serial(ps, lines, explain=True)[0]
    decisions = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {d["policy_revision"] for d in decisions if "policy_revision" in d} == {"batch-test"}
    assert any("trace" in d for d in decisions)


def test_error_records_have_the_cli_shape(ps: engine.PolicySet) -> None:
    lead_error = LeadError("must be an integer", "employees", "LEAD001")
    assert error_record(7, lead_error) == cli.lead_error_record(7, lead_error)
    other = ValueError("boom")
    assert error_record(3, other) == cli.lead_error_record(3, other)
    out = io.StringIO()
    evaluate_lines(ps, [(1, '{"id": "x", "employees": "many"}\n'), (2, "{oops\n")], out, NOW, jobs=1, progress=False)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {"line": 1, "lead_id": "x", "error": {"code": "LEAD001", "field": "employees",
                                                          "message": first["error"]["message"]}}
    assert second["line"] == 2 and second["error"]["code"] == "LEAD000"
    assert second["error"]["message"].startswith("malformed JSON: ") and second["error"]["field"] == ""


def test_text_format(ps: engine.PolicySet) -> None:
    lines = numbered_lines(40)
    out = io.StringIO()
    evaluate_lines(ps, lines, out, NOW, fmt="text", jobs=2, chunk_size=8, progress=False)
    text = out.getvalue()
    assert text.count("lead L-") >= 30
    assert "\nline 4: error[LEAD" in text and '"line"' not in text  # error records are readable lines too


def test_memory_is_bounded_while_streaming(ps: engine.PolicySet) -> None:
    """The input is read at most a bounded number of chunks ahead of what has been written."""
    consumed = 0
    lead = json.dumps(next(generate_leads(1, seed=1, now=NOW)))

    def source():
        nonlocal consumed
        for i in range(1, 3001):
            consumed = i
            yield i, lead + "\n"

    ahead: list[int] = []

    class Sink(io.StringIO):
        def write(self, text: str) -> int:
            ahead.append(consumed - self.getvalue().count("\n") - text.count("\n"))
            return super().write(text)

    out = Sink()
    total, failed = evaluate_lines(ps, source(), out, NOW, jobs=2, chunk_size=50, progress=False)
    assert (total, failed) == (3000, 0)
    window = 2 * 2 + 2
    assert max(ahead) <= (window + 2) * 50


def test_empty_and_blank_input(ps: engine.PolicySet) -> None:
    out = io.StringIO()
    assert evaluate_lines(ps, [], out, NOW, progress=False) == (0, 0)
    assert evaluate_lines(ps, [(1, "\n"), (2, "  \n")], out, NOW, progress=False) == (0, 0)
    assert out.getvalue() == ""


def test_progress_bar_only_when_asked_or_on_a_terminal(ps: engine.PolicySet, capsys: pytest.CaptureFixture) -> None:
    lines = numbered_lines(40)
    evaluate_lines(ps, lines, io.StringIO(), NOW, jobs=1, progress=None)  # stderr is not a TTY under pytest
    assert capsys.readouterr().err == ""
    evaluate_lines(ps, lines, io.StringIO(), NOW, jobs=1, progress=True)
    assert "leads" in capsys.readouterr().err


def test_cli_eval_jsonl_with_jobs(tmp_path) -> None:
    path = tmp_path / "leads.jsonl"
    lines = numbered_lines(120)
    path.write_text("".join(text for _, text in lines), encoding="utf-8")
    runner = CliRunner()
    args = ["eval", str(path), "--now", "2026-11-23T09:00:00+10:00"]
    one = runner.invoke(cli.cli, [*args, "--jobs", "1"])
    two = runner.invoke(cli.cli, [*args, "--jobs", "2"])
    default = runner.invoke(cli.cli, args)
    assert one.exit_code == two.exit_code == default.exit_code == 2  # some lines failed: partial
    assert one.stdout == two.stdout == default.stdout
    non_blank = sum(1 for _, text in lines if text.strip())
    assert len(one.stdout.splitlines()) == non_blank
    assert f"{non_blank} leads: " in one.stderr
