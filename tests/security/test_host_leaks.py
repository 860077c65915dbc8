"""Nothing from the host in a result: no host clock, no server time zone, no paths, addresses, code or frames.

Decisions depend only on (policy revision, lead, explicit `now`). We run `leadops eval` under different TZ
and locale settings, with libfaketime moving the process clock when it is installed, from a different working
directory and with an absolute --policies path, and require byte-identical output. Expression values and
error messages are scanned for host paths, object reprs and addresses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

import engine
from engine.errors import PolicyError

REPO = Path(__file__).resolve().parents[2]
LEADS = sorted(str(p.relative_to(REPO)) for p in (REPO / "scenarios" / "leads").glob("*.json"))
FAKETIME_LIBS = [p for p in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                             "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                             "/usr/local/lib/faketime/libfaketime.so.1") if os.path.exists(p)]  # fmt: skip
HOST_MARKERS = [str(REPO), str(Path.home()), os.path.dirname(os.__file__), socket.gethostname(), "Traceback",
                "<function", "<code object", "<frame", "<module", " object at 0x", "<built-in"]


def _eval_all(sec, *, env=None, cwd=None, policies="policies", extra=()) -> bytes:
    args = ["eval", *(LEADS if cwd is None else [str(REPO / p) for p in LEADS]), "--now", sec.NOW,
            "--policies", policies, "--explain", *extra]
    proc = sec.leadops(*args, env=env, cwd=cwd, timeout=120)
    sec.assert_no_traceback(proc)
    assert proc.returncode in (0, 2), proc.stderr[-800:]
    return proc.stdout


@pytest.fixture(scope="module")
def reference_output(sec) -> bytes:
    return _eval_all(sec, env={"TZ": "UTC", "LC_ALL": "C.UTF-8"})


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "America/St_Johns"])
def test_output_does_not_depend_on_the_host_time_zone(sec, reference_output, tz) -> None:
    assert _eval_all(sec, env={"TZ": tz, "LC_ALL": "C.UTF-8"}) == reference_output


def test_output_does_not_depend_on_locale(sec, reference_output) -> None:
    assert _eval_all(sec, env={"TZ": "UTC", "LC_ALL": "C", "LANG": "de_DE.UTF-8"}) == reference_output


@pytest.mark.parametrize("fake", ["@2001-02-03 04:05:06", "+3650d"])
def test_output_does_not_depend_on_the_host_clock(sec, reference_output, fake) -> None:
    """libfaketime moves every clock the process can read (time(), clock_gettime, datetime.now)."""
    if not FAKETIME_LIBS:
        pytest.skip("libfaketime not installed (apt-get install faketime)")
    env = {"TZ": "UTC", "LC_ALL": "C.UTF-8", "LD_PRELOAD": FAKETIME_LIBS[0], "FAKETIME": fake,
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    if fake.startswith("@"):  # canary: without --now the CLI defaults to the (faked) host clock
        canary = sec.leadops("expr", "now", env=env, timeout=60)
        assert canary.stdout.decode().strip('"\n').startswith(fake[1:11]), (canary.stdout, "libfaketime not effective")
    assert _eval_all(sec, env=env) == reference_output


def test_output_is_identical_a_second_later(sec, reference_output) -> None:
    """Without libfaketime: a host clock read at second resolution would show up as a difference."""
    if FAKETIME_LIBS:
        pytest.skip("libfaketime covers this")
    time.sleep(1.1)
    assert _eval_all(sec, env={"TZ": "UTC", "LC_ALL": "C.UTF-8"}) == reference_output


def test_output_does_not_depend_on_cwd_or_path_spelling(sec, tmp_path, reference_output) -> None:
    out = _eval_all(sec, env={"TZ": "UTC", "LC_ALL": "C.UTF-8"}, cwd=tmp_path, policies=str(REPO / "policies"))
    assert out == reference_output


def test_decisions_contain_no_host_details(reference_output) -> None:
    text = reference_output.decode("utf-8")
    for marker in HOST_MARKERS:
        assert marker not in text, marker
    for line in text.splitlines():
        decision = json.loads(line)
        assert decision["evaluated_at"] == "2026-11-23T09:00:00+10:00"


@pytest.mark.parametrize("expression", [
    "lead", "now", "score", "stage", "lead.activities", "max([lead.company])", "lead.company", "days_since(now)",
    "[lead, score, stage, now]", "coalesce(lead.company, now)", "lead.stage_entered_at", "lead.email[0]",
])  # fmt: skip
def test_expression_values_are_plain_json_without_host_details(policy_set, expression) -> None:
    lead = json.loads((REPO / "scenarios/leads/icp-enterprise-brisbane.json").read_text())
    now = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    value = policy_set.evaluate_expression(expression, lead, now)
    text = json.dumps(value, allow_nan=False)  # plain JSON data only

    def walk(v):
        assert type(v) in (dict, list, str, int, float, bool, type(None)), type(v)
        if isinstance(v, dict):
            [walk(x) for x in v.values()]
        if isinstance(v, list):
            [walk(x) for x in v]

    walk(value)
    for marker in HOST_MARKERS:
        assert marker not in text, marker
    if expression == "now":
        assert value == "2026-11-23T09:00:00+00:00"  # the explicit now, in its own offset, not the host's


@pytest.mark.parametrize("expression", [
    "lead.__class__", "lead.nope", "lead.email + 1", "lower(lead.employees)", "1 / 0", "2 ** 5000",
    '"a" * (10 ** 9)', "lead.employees.__globals__", "matches(lead.email, \"(\")",
])  # fmt: skip
def test_error_messages_contain_no_host_details(expression, monkeypatch) -> None:
    from click.testing import CliRunner

    import cli

    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli.cli, ["expr", expression, "--lead", "scenarios/leads/icp-enterprise-brisbane.json",
                                          "--now", "2026-11-23T09:00:00+10:00"])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit), result
    text = result.output
    for marker in HOST_MARKERS:
        assert marker not in text, (marker, text)


def test_lead_error_records_contain_no_host_details(sec, tmp_path) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_text('{"id": 1}\n{"id": "x", "country": "nowhere"}\nnot json\n')
    proc = sec.leadops("eval", str(path), "--now", sec.NOW, timeout=60)
    sec.assert_no_traceback(proc)
    out = proc.stdout.decode()
    for marker in HOST_MARKERS + [str(tmp_path)]:
        assert marker not in out, marker


# ---- host files must not be pulled into a policy set -----------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "repo" / "policies")
    shutil.copytree(REPO / "schemas", tmp_path / "repo" / "schemas")
    return tmp_path / "repo" / "policies"


def test_lead_schema_outside_the_repository_is_refused(tmp_path) -> None:
    """`lead_schema: /abs/path` (from a pull request) must not read a host file into the policy set: only a
    path inside the policy repository is allowed (bundles already refuse absolute paths)."""
    policies = _copy(tmp_path)
    outside = tmp_path / "host-secret.json"
    schema = json.loads((REPO / "schemas/lead.schema.json").read_text())
    schema["description"] = "HOST-SECRET"
    outside.write_text(json.dumps(schema))
    leadops_yaml = policies / "leadops.yaml"
    leadops_yaml.write_text(re.sub(r"lead_schema: .*", f"lead_schema: {outside}", leadops_yaml.read_text()))
    try:
        ps = engine.load_policies(str(policies))
    except PolicyError as exc:
        assert any("lead_schema" in d.message or "schema" in d.message for d in exc.diagnostics)
        return
    leaked = [name for name in ps.source_files if not name.startswith(("policies/", "schemas/"))]
    pytest.fail(f"policy set loaded a file from outside the repository: {leaked}")


def test_symlinked_policy_file_outside_the_repository_is_refused(tmp_path) -> None:
    policies = _copy(tmp_path)
    outside = tmp_path / "outside.yaml"
    outside.write_text("kind: teams\nsecret: HOST-SECRET\n")
    (policies / "zz-link.yaml").symlink_to(outside)
    try:
        ps = engine.load_policies(str(policies))
    except PolicyError as exc:
        text = "\n".join(d.format() for d in exc.diagnostics)
        assert "HOST-SECRET" not in text
        return
    assert all(b"HOST-SECRET" not in data for data in ps.source_files.values()), "followed a symlink out of the repo"
