"""The `leadops` command: exit codes (0 ok, 1 user error, 2 usage error or partial batch), JSON Lines error
records, help texts, and no tracebacks for user errors. Mostly through CliRunner; a few real subprocesses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import cli
from conftest import MINIMAL, REPO

LEADOPS = REPO / ".venv" / "bin" / "leadops"
NOW = "2026-11-23T09:00:00+10:00"
LEADS = REPO / "scenarios" / "leads"
ONE_LEAD = str(LEADS / "icp-enterprise-brisbane.json")
MINI = str(MINIMAL / "policies")
INVALID = REPO / "tests" / "fixtures" / "invalid" / "REF003-unknown-team" / "policies"


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli.cli, list(args), input=input, catch_exceptions=True)
    # a user error is never a traceback
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    return result


def lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


# ---------------------------------------------------------------- validate


def test_validate_ok(tmp_path) -> None:
    r = run("validate", "--policies", MINI)
    assert r.exit_code == 0
    assert "valid — mini 1" in r.stdout and "3 routing rules" in r.stdout


def test_validate_json_ok() -> None:
    r = run("validate", "--policies", MINI, "--format", "json")
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data["valid"] is True and data["errors"] == [] and data["policy"]["name"] == "mini"


def test_validate_invalid_policy_exits_1_with_located_diagnostics() -> None:
    r = run("validate", "--policies", str(INVALID))
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.splitlines()[0] == "policies/routing.yaml:6:9: error[REF003]: unknown team 'rep'"
    assert r.stderr.splitlines()[1].startswith("  hint: did you mean 'reps'?")
    assert r.stderr.rstrip().endswith("1 error found")


def test_validate_invalid_policy_json() -> None:
    r = run("validate", "--policies", str(INVALID), "--format", "json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["valid"] is False
    assert [(e["code"], e["file"], e["line"], e["column"]) for e in data["errors"]] == [
        ("REF003", "policies/routing.yaml", 6, 9)]


def test_validate_missing_directory_exits_1(tmp_path) -> None:
    r = run("validate", "--policies", str(tmp_path / "nope"))
    assert r.exit_code == 1 and "error[POL001]" in r.stderr


@pytest.mark.parametrize("args", [["validate", "--bogus"], ["validate", "--format", "xml"], ["nosuchcommand"],
                                  ["eval", "--format", "yaml", ONE_LEAD], ["expr"]])
def test_usage_errors_exit_2(args) -> None:
    r = run(*args)
    assert r.exit_code == 2
    assert "Usage:" in r.stderr


# ---------------------------------------------------------------- eval: single leads


def test_eval_single_lead_json() -> None:
    r = run("eval", ONE_LEAD, "--now", NOW)
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert d["lead_id"] == "L-1001" and d["evaluated_at"] == NOW and "trace" not in d


def test_eval_text_and_explain() -> None:
    r = run("eval", ONE_LEAD, "--now", NOW, "--format", "text", "--explain")
    assert r.exit_code == 0
    assert r.stdout.startswith("lead L-1001  ·  policy ")
    assert "\nexplain\n" in r.stdout and "\nstage  " in r.stdout and "\nroute  " in r.stdout


def test_eval_from_stdin() -> None:
    r = run("eval", "-", "--now", NOW, "--policies", MINI, input='{"id": "L-9", "country": "AU", "employees": 60}')
    assert r.exit_code == 0 and json.loads(r.stdout)["stage"]["to"] == "mql"


def test_eval_invalid_single_lead_exits_1() -> None:
    r = run("eval", "-", "--now", NOW, "--policies", MINI, input='{"id": "L-9", "employees": "lots"}')
    assert r.exit_code == 1
    assert r.stderr.startswith("error: invalid lead: employees")
    assert r.stdout == ""


@pytest.mark.parametrize("doc", ['[1, 2', '"just a string"', '42'])
def test_eval_non_object_single_document_exits_1(doc: str, tmp_path) -> None:
    f = tmp_path / "lead.json"
    f.write_text(doc)
    r = run("eval", str(f), "--now", NOW, "--policies", MINI)
    assert r.exit_code == 1 and r.stderr.startswith("error: ")


def test_eval_missing_lead_file_exits_1(tmp_path) -> None:
    r = run("eval", str(tmp_path / "nope.json"), "--now", NOW, "--policies", MINI)
    assert r.exit_code == 1 and "does not exist" in r.stderr


@pytest.mark.parametrize("now", ["yesterday", "2026-11-23T09:00:00"])
def test_eval_bad_now_is_a_usage_error(now: str) -> None:
    r = run("eval", ONE_LEAD, "--now", now)
    assert r.exit_code == 2 and "--now" in r.stderr


def test_eval_with_invalid_policies_exits_1() -> None:
    r = run("eval", ONE_LEAD, "--now", NOW, "--policies", str(INVALID))
    assert r.exit_code == 1 and "error[REF003]" in r.stderr


def test_now_accepts_z() -> None:
    r = run("eval", ONE_LEAD, "--now", "2026-11-22T23:00:00Z")
    assert r.exit_code == 0 and json.loads(r.stdout)["evaluated_at"] == "2026-11-22T23:00:00+00:00"


# ---------------------------------------------------------------- eval: batches


GOOD = ['{"id": "L-1", "country": "AU", "employees": 60}', '{"id": "L-2"}', '{"id": "L-3", "country": "NZ"}']


def test_jsonl_with_broken_lines_gives_error_records_with_line_numbers(tmp_path) -> None:
    f = tmp_path / "leads.jsonl"
    f.write_text("\n".join([GOOD[0], '{"id": "L-x", "employees": "lots"}', "{not json", GOOD[1], '[1]', GOOD[2]]) + "\n")
    r = run("eval", str(f), "--now", NOW, "--policies", MINI)
    assert r.exit_code == 2
    out = lines(r.stdout)
    assert len(out) == 6  # counts in = counts out
    # error records carry the lead id when the line had one, so they join back to the input by id or line
    assert [o.get("lead_id") for o in out] == ["L-1", "L-x", None, "L-2", None, "L-3"]
    assert [("error" in o) for o in out] == [False, True, True, False, True, False]
    assert out[1] == {"line": 2, "lead_id": "L-x", "error": {"code": out[1]["error"]["code"], "field": "employees",
                                                             "message": out[1]["error"]["message"]}}
    assert out[2]["line"] == 3 and out[2]["error"]["code"] == "LEAD000" and "malformed JSON" in out[2]["error"]["message"]
    assert out[4]["line"] == 5
    assert r.stderr.strip().splitlines()[-1] == "6 leads: 3 decisions, 3 errors"


def test_jsonl_all_good_exits_0_and_skips_blank_lines(tmp_path) -> None:
    f = tmp_path / "leads.ndjson"
    f.write_text(GOOD[0] + "\n\n" + GOOD[1] + "\n   \n" + GOOD[2] + "\n")
    r = run("eval", str(f), "--now", NOW, "--policies", MINI)
    assert r.exit_code == 0
    assert [o["lead_id"] for o in lines(r.stdout)] == ["L-1", "L-2", "L-3"]
    assert "3 leads: 3 decisions, 0 errors" in r.stderr


def test_jsonl_error_line_numbers_count_blank_lines(tmp_path) -> None:
    f = tmp_path / "leads.jsonl"
    f.write_text(GOOD[0] + "\n\n{broken\n")
    out = lines(run("eval", str(f), "--now", NOW, "--policies", MINI).stdout)
    assert out[1]["line"] == 3


def test_jsonl_on_stdin(tmp_path) -> None:
    r = run("eval", "-", "--now", NOW, "--policies", MINI, input="\n".join([GOOD[0], "{oops", GOOD[1]]) + "\n")
    assert r.exit_code == 2
    out = lines(r.stdout)
    assert [o.get("lead_id", o.get("line")) for o in out] == ["L-1", 2, "L-2"]


def test_jsonl_on_stdin_with_a_blank_line_after_the_first_record() -> None:
    r = run("eval", "-", "--now", NOW, "--policies", MINI, input=GOOD[0] + "\n\n" + GOOD[1] + "\n" + GOOD[2] + "\n")
    assert r.exit_code == 0, r.stdout
    assert [o.get("lead_id") for o in lines(r.stdout)] == ["L-1", "L-2", "L-3"]


def test_jsonl_on_stdin_whose_first_line_is_broken_is_still_a_batch() -> None:
    """README: JSON Lines -> one output line per input line, bad lines become error records (exit 2)."""
    r = run("eval", "-", "--now", NOW, "--policies", MINI, input="{oops\n" + GOOD[0] + "\n" + GOOD[1] + "\n")
    assert r.exit_code == 2, r.stderr
    out = lines(r.stdout)
    assert len(out) == 3 and out[0]["line"] == 1 and [o.get("lead_id") for o in out[1:]] == ["L-1", "L-2"]


def test_jsonl_text_format(tmp_path) -> None:
    f = tmp_path / "leads.jsonl"
    f.write_text(GOOD[0] + "\n" + GOOD[1] + "\n")
    r = run("eval", str(f), "--now", NOW, "--policies", MINI, "--format", "text")
    assert r.exit_code == 0 and r.stdout.count("lead L-") == 2


def test_several_files_one_line_each_and_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "B", "employees": -1}')
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    paths = [str(p) for p in sorted(LEADS.glob("*.json"))[:3]] + [str(bad), str(broken), str(tmp_path / "missing.json")]
    r = run("eval", *paths, "--now", NOW)
    assert r.exit_code == 2
    out = lines(r.stdout)
    assert len(out) == len(paths)
    assert [o.get("file") for o in out[3:]] == paths[3:]
    assert out[3]["error"]["field"] == "employees"
    assert "6 leads: 3 decisions, 3 errors" in r.stderr


def test_every_sample_lead_evaluates(tmp_path) -> None:
    paths = [str(p) for p in sorted(LEADS.glob("*.json"))]
    r = run("eval", *paths, "--now", NOW)
    assert r.exit_code == 0
    assert len(lines(r.stdout)) == len(paths)


# ---------------------------------------------------------------- expr


def test_expr_arithmetic() -> None:
    r = run("expr", "1 + 2 * 3")
    assert (r.exit_code, r.stdout) == (0, "7\n")


def test_expr_with_lead_and_now() -> None:
    r = run("expr", 'lead.employees >= 50 and lead.country in ["AU", "NZ"]', "--lead", ONE_LEAD, "--now", NOW)
    assert (r.exit_code, r.stdout) == (0, "true\n")
    r = run("expr", "lead.company.name", "--lead", ONE_LEAD, "--now", NOW)
    assert r.stdout == '"CoralSoft Pty Ltd"\n'
    r = run("expr", "lead.abn", "--now", NOW)  # the empty lead: missing -> null
    assert r.stdout == "null\n"


@pytest.mark.parametrize("expression,code", [("1 +", "EXPR001"), ("lead.employes", "EXPR004"), ("__import__('os')", "EXPR0")])
def test_expr_rejected_expression_exits_1(expression: str, code: str) -> None:
    r = run("expr", expression)
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error: {code}")
    assert r.stdout == ""


def test_expr_bad_lead_file_exits_1(tmp_path) -> None:
    assert run("expr", "1", "--lead", str(tmp_path / "nope.json")).exit_code == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    r = run("expr", "1", "--lead", str(bad))
    assert r.exit_code == 1 and "not valid JSON" in r.stderr
    bad.write_text('{"id": 5}')
    assert run("expr", "1", "--lead", str(bad)).exit_code == 1


# ---------------------------------------------------------------- help


def all_commands(group: click.Group = cli.cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += all_commands(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


COMMANDS = all_commands()


def test_command_list_covers_the_documented_commands() -> None:
    assert {("validate",), ("eval",), ("expr",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "leadops" for p in COMMANDS])
def test_help_ends_with_an_example(path: tuple[str, ...]) -> None:
    r = run(*path, "--help")
    assert r.exit_code == 0
    text = [x for x in r.stdout.rstrip().splitlines()]
    example_at = max((i for i, x in enumerate(text) if x.strip() == "Example:"), default=None)
    assert example_at is not None, "no 'Example:' section"
    tail = [x for x in text[example_at + 1:] if x.strip()]
    assert any("leadops" in x for x in tail), "the example runs no leadops command"
    headings = [x for x in tail if not x.startswith(" ")]  # e.g. "Options:", "Commands:"
    assert not headings, "--help must end with the example; after it comes:\n" + "\n".join(tail)


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "leadops" for p in COMMANDS])
def test_help_example_names_its_own_command(path: tuple[str, ...]) -> None:
    r = run(*path, "--help")
    text = r.stdout.splitlines()
    i = next(i for i, x in enumerate(text) if x.strip() == "Example:")
    example = []
    for x in text[i + 1:]:
        if x.strip() and not x.startswith(" "):
            break
        example.append(x)
    assert " ".join(("leadops", *path)) in "\n".join(example)


# ---------------------------------------------------------------- real processes


def proc(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(LEADOPS), *args], input=input, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_subprocess_expr_prints_7() -> None:
    p = proc("expr", "1 + 2 * 3")
    assert (p.returncode, p.stdout, p.stderr) == (0, "7\n", "")


def test_subprocess_validate_exit_codes() -> None:
    assert proc("validate", "--policies", MINI).returncode == 0
    p = proc("validate", "--policies", str(INVALID))
    assert p.returncode == 1 and "error[REF003]" in p.stderr and "Traceback" not in p.stderr
    p = proc("validate", "--bogus")
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_subprocess_jsonl_partial_batch(tmp_path) -> None:
    f = tmp_path / "leads.jsonl"
    f.write_text(GOOD[0] + "\n{broken\n" + GOOD[1] + "\n")
    p = proc("eval", str(f), "--now", NOW, "--policies", MINI)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    out = lines(p.stdout)
    assert len(out) == 3 and out[1]["line"] == 2
    assert p.stderr.strip() == "3 leads: 2 decisions, 1 error"


def test_subprocess_bad_lead_and_bad_expression() -> None:
    p = proc("eval", "-", "--now", NOW, "--policies", MINI, input='{"id": ""}')
    assert p.returncode == 1 and p.stderr.startswith("error: invalid lead") and "Traceback" not in p.stderr
    p = proc("expr", "lead.__class__")
    assert p.returncode == 1 and p.stderr.startswith("error: EXPR") and "Traceback" not in p.stderr
