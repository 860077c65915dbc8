"""Hostile inputs through the real entry points: YAML policy files via `load_policies` / `leadops validate`, and
JSON Lines lead batches via `leadops eval` in a subprocess (timeout + address-space limit).

Contract (issue 7, "Inputs"): every hostile YAML file is a located diagnostic, bounded in time and memory; a
lead batch gives a decision for every good line and an error record (line, field, reason) for every bad one,
one output line per non-blank input line (counts in = counts out, stated at the end), exit code 2.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

import engine
from engine.errors import PolicyError

REPO = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------------------ YAML


def _policy_copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    return tmp_path / "policies"


BILLION_LAUGHS = b"kind: teams\n" + b"a: &a [x, x, x, x, x, x, x, x, x]\n" + b"".join(
    b"%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n" % ((chr(98 + i).encode(),) * 2 + (chr(97 + i).encode(),) * 9)
    for i in range(8)
)  # fmt: skip

# (id, file name, bytes appended to / replacing the file, expected diagnostic code prefix)
YAML_CASES = [
    ("duplicate-key", "scoring.yaml", ("append", b"grade: [fit, engagement]\n"), "YAML002"),
    ("alias-bomb", "zz-bomb.yaml", ("replace", BILLION_LAUGHS), "YAML004"),
    ("anchor-merge-key", "zz-merge.yaml", ("replace", b"kind: teams\nbase: &b {x: 1}\nother:\n  <<: *b\n"), "YAML004"),
    ("python-object-tag", "zz-tag.yaml", ("replace", b"kind: teams\nx: !!python/object/apply:os.system [id]\n"), "YAML003"),
    ("python-name-tag", "scoring.yaml", ("append", b"x: !!python/name:os.system\n"), "YAML003"),
    ("binary-tag", "scoring.yaml", ("append", b"x: !!binary aGVsbG8=\n"), "YAML003"),
    ("tab-indent", "scoring.yaml", ("append", b"extra:\n\tkey: 1\n"), "YAML005"),
    ("non-utf8-latin1", "scoring.yaml", ("append", b"description: caf\xe9\n"), "YAML006"),
    ("utf16-bom", "zz-utf16.yaml", ("replace", "kind: teams\n".encode("utf-16")), "YAML006"),
    ("nul-byte", "scoring.yaml", ("append", b"x: a\x00b\n"), "YAML006"),
    ("bidi-in-expression", "scoring.yaml", ("append", "x: 'lead.email == \"a\u202e\"'\n".encode()), "YAML006"),
    ("line-separator", "scoring.yaml", ("append", "x: a\u2028b\n".encode()), "YAML006"),
    ("deep-flow-nesting", "zz-deep.yaml", ("replace", b"kind: teams\nx: " + b"[" * 100_000 + b"]" * 100_000 + b"\n"), "YAML007"),
    ("deep-block-nesting", "zz-deep2.yaml", ("replace", b"kind: teams\n" + b"".join(b"  " * i + b"k:\n" for i in range(200))), "YAML007"),
    ("too-large", "zz-large.yaml", ("replace", b"kind: teams\n" + b"# padding\n" * 120_000), "YAML007"),
    ("too-many-nodes", "zz-nodes.yaml", ("replace", b"kind: teams\nx: [" + b"1," * 150_000 + b"1]\n"), "YAML007"),
    ("huge-number", "scoring.yaml", ("append", b"x: " + b"9" * 5000 + b"\n"), "YAML011"),
    ("nan-number", "scoring.yaml", ("append", b"x: .nan\n"), "YAML011"),
    ("two-documents", "zz-docs.yaml", ("replace", b"kind: teams\n---\nkind: teams\n"), "YAML008"),
    ("expression-dunder", "scoring.yaml", ("sub", (b"when: lead.employees >= 50", b"when: lead.__class__ == 1")), "EXPR002"),
    ("expression-format", "scoring.yaml", ("sub", (b"when: lead.employees >= 50", b"""when: '"{0.__class__}".format(lead) == 1'""")), "EXPR002"),
    ("expression-homoglyph", "scoring.yaml", ("sub", (b"when: lead.employees >= 50", "when: lead.ｅmployees >= 50".encode())), "EXPR007"),
    ("expression-too-long", "scoring.yaml", ("sub", (b"when: lead.employees >= 50", b"when: " + b"1 + " * 700 + b"1 > 0")), ("EXPR006", "SCHEMA")),
    ("expression-comprehension", "scoring.yaml", ("sub", (b"when: lead.employees >= 50", b"when: '[a for a in lead.activities]'")), "EXPR002"),
]


def _apply(policies: Path, name: str, change) -> None:
    path = policies / name
    how, data = change
    if how == "replace":
        path.write_bytes(data)
    elif how == "append":
        path.write_bytes(path.read_bytes() + data)
    else:
        old, new = data
        text = path.read_bytes()
        assert old in text, (name, old)
        path.write_bytes(text.replace(old, new, 1))


@pytest.mark.parametrize("case_id, name, change, code", YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_hostile_yaml_is_a_located_diagnostic(tmp_path, case_id, name, change, code) -> None:
    policies = _policy_copy(tmp_path)
    _apply(policies, name, change)
    start = time.perf_counter()
    with pytest.raises(PolicyError) as info:
        engine.load_policies(str(policies))
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"{case_id}: load took {elapsed:.1f}s"
    diags = info.value.diagnostics
    matching = [d for d in diags if d.code.startswith(code if isinstance(code, tuple) else (code,))]
    assert matching, f"{case_id}: expected {code}, got {[d.format() for d in diags][:5]}"
    for d in matching:
        assert d.location.file.endswith(name) and d.location.line >= 1 and d.location.column >= 1, d.format()


def test_expression_diagnostic_points_into_the_expression(tmp_path) -> None:
    """A rejected expression is located at the offending character of the YAML line, not just the key."""
    policies = _policy_copy(tmp_path)
    _apply(policies, "scoring.yaml", ("sub", (b"when: lead.employees >= 50", b"when: lead.employees >= lead.__class__")))
    with pytest.raises(PolicyError) as info:
        engine.load_policies(str(policies))
    d = next(d for d in info.value.diagnostics if d.code == "EXPR002")
    line = (policies / "scoring.yaml").read_text().splitlines()[d.location.line - 1]
    assert line[d.location.column - 1:].startswith("__class__") or line[d.location.column - 1:].startswith("lead.__"), (line, d)


def test_hostile_yaml_through_the_cli_never_tracebacks(tmp_path, sec) -> None:
    policies = _policy_copy(tmp_path)
    (policies / "zz-bomb.yaml").write_bytes(BILLION_LAUGHS)
    (policies / "zz-tag.yaml").write_bytes(b"kind: teams\nx: !!python/object/apply:os.system [touch /tmp/pwned]\n")
    proc = sec.leadops("validate", "--policies", str(policies), "--format", "json", timeout=60, mem_mb=1024)
    sec.assert_no_traceback(proc)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert {"YAML003", "YAML004"} <= {e["code"] for e in report["errors"]}
    assert all(e["line"] >= 1 for e in report["errors"])


def test_multi_gigabyte_policy_file_is_refused_without_reading_it(tmp_path, sec) -> None:
    """A sparse 3 GB `policies/*.yaml` must be a YAML007 diagnostic in bounded memory (here: 1 GB address space),
    not a MemoryError: the size limit has to be checked before the file is read."""
    policies = _policy_copy(tmp_path)
    with open(policies / "zz-huge.yaml", "wb") as f:
        f.truncate(3 * 1024**3)
    proc = sec.leadops("validate", "--policies", str(policies), "--format", "json", timeout=60, mem_mb=1024)
    sec.assert_no_traceback(proc)
    assert proc.returncode == 1, proc.stderr[-500:]
    assert "YAML007" in proc.stdout.decode(), proc.stdout[-500:]


# ------------------------------------------------------------------------------------------------ leads

GOOD = {"id": "good-{n}", "email": "jo@acme.com", "country": "AU", "employees": 120,
        "activities": [{"type": "page_view", "at": "2026-11-20T10:00:00+10:00", "url": "/pricing"}]}  # fmt: skip

# (id, raw line bytes, expected field of the error record or None when any field is acceptable)
BAD_LINES: list[tuple[str, bytes, str | None]] = [
    ("malformed-json", b'{"id": "x", "email": ', None),
    ("trailing-garbage", b'{"id": "x"} {"id": "y"}', None),
    ("wrong-type-id", b'{"id": 5}', "id"),
    ("wrong-type-employees", b'{"id": "x", "employees": "many"}', "employees"),
    ("schema-pattern", b'{"id": "x", "country": "Australia"}', "country"),
    ("schema-enum", b'{"id": "x", "seniority": "emperor"}', "seniority"),
    ("missing-required", b'{"email": "x@y.z"}', "id"),
    ("null-required", b'{"id": null}', "id"),
    ("bad-datetime", b'{"id": "x", "stage_entered_at": "yesterday"}', "stage_entered_at"),
    ("naive-datetime", b'{"id": "x", "stage_entered_at": "2026-11-20T10:00:00"}', "stage_entered_at"),
    ("nested-field", b'{"id": "x", "activities": [{"type": "page_view", "at": "2026-11-20T10:00:00Z"}, {"type": "teleport", "at": "2026-11-20T10:00:00Z"}]}', "activities[1].type"),
    ("huge-string", b'{"id": "x", "email": "' + b"a" * 5_000_000 + b'"}', "email"),
    ("huge-undeclared-string", b'{"id": "x", "notes": "' + b"a" * 200_000 + b'"}', "notes"),
    ("deep-nesting", b'{"id": "x", "custom": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    ("deep-nesting-objects", b'{"id": "x", "custom": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}", None),
    ("lead-too-deep-but-parseable", b'{"id": "x", "custom": ' + b"[" * 200 + b"]" * 200 + b"}", "custom"),
    ("non-utf8-bytes", b'{"id": "caf\xe9 \xff"}', None),
    ("lone-surrogate-escape", b'{"id": "\\ud800"}', None),
    ("nan", b'{"id": "x", "employees": NaN}', "employees"),
    ("infinity", b'{"id": "x", "company": {"annual_revenue": Infinity}}', "company.annual_revenue"),
    ("nan-undeclared", b'{"id": "x", "custom": -Infinity}', "custom"),
    ("duplicate-keys", b'{"id": "dup-a", "id": "dup-b"}', "id"),
    ("duplicate-nested-keys", b'{"id": "x", "company": {"name": "A", "name": "B"}}', "company.name"),
    ("huge-int", b'{"id": "x", "employees": ' + b"9" * 5000 + b"}", None),
    ("big-int-bits", b'{"id": "x", "custom": ' + b"9" * 400 + b"}", "custom"),
    ("top-level-array", b"[1, 2]", None),
    ("top-level-null", b"null", None),
    ("top-level-string", b'"lead"', None),
    ("nul-in-line", b'{"id": "x\x00"}', None),
    ("bom-mid-file", b'\xef\xbb\xbf{"id": "x"}', None),
]


def _good(n: int) -> bytes:
    return json.dumps({**GOOD, "id": f"good-{n}"}).encode()


def _batch(bad: list[bytes], *, blank_lines: bool = True) -> tuple[bytes, list[tuple[int, str]]]:
    """Interleave good and bad lines; return the bytes and [(line number, "good"|"bad")]."""
    lines, kinds = [], []
    n = 0
    for i, b in enumerate(bad):
        for line, kind in ((_good(i), "good"), (b, "bad")):
            lines.append(line)
            n += 1
            kinds.append((n, kind))
        if blank_lines and i % 7 == 3:
            lines.append(b"   ")
            n += 1
    lines.append(_good(len(bad)))
    kinds.append((n + 1, "good"))
    return b"\n".join(lines) + b"\n", kinds


def _check_batch(proc, kinds, sec, expected_fields: dict[int, str | None] | None = None) -> None:
    sec.assert_no_traceback(proc)
    out = proc.stdout.decode("utf-8")  # output must be valid UTF-8, whatever the input
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(records) == len(kinds), f"counts in ({len(kinds)}) != counts out ({len(records)})"
    good = bad = 0
    for (number, kind), record in zip(kinds, records):
        if kind == "good":
            good += 1
            assert "lead_id" in record, (number, record)
        else:
            bad += 1
            assert record.get("line") == number, (number, record)
            err = record["error"]
            assert err["code"].startswith("LEAD") and err["message"], record
            assert "field" in err, record
            if expected_fields and expected_fields.get(number):
                assert err["field"].startswith(expected_fields[number]), (number, record)
    assert proc.returncode == 2, proc.returncode
    summary = proc.stderr.decode("utf-8", "replace")
    from cli import batch_summary

    assert batch_summary(good + bad, bad) in summary, summary[-300:]


def _run_batch(sec, tmp: Path, lines: list[bytes], name: str = "leads.jsonl"):
    data, kinds = _batch(lines, blank_lines=False)
    path = tmp / name
    path.write_bytes(data)
    return sec.leadops("eval", str(path), "--now", sec.NOW, timeout=120, mem_mb=2048), kinds


@pytest.fixture(scope="module")
def bad_line_results(sec, tmp_path_factory):
    """Every bad line in one batch (one subprocess). If that batch crashes or loses lines, each bad line is run
    in a batch of its own so every case reports its own failure."""
    from concurrent.futures import ThreadPoolExecutor

    tmp = tmp_path_factory.mktemp("bad-lines")
    proc, kinds = _run_batch(sec, tmp, [line for _, line, _ in BAD_LINES])
    results = {}
    try:
        _check_batch(proc, kinds, sec)
        for case_id, _line, _field in BAD_LINES:
            results[case_id] = (proc, None)
        return {"all": (proc, kinds), **{k: ("all", None) for k in results}}
    except AssertionError:
        pass

    def alone(case):
        case_id, line, _field = case
        d = tmp / case_id
        d.mkdir()
        return case_id, _run_batch(sec, d, [line])

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(pool.map(alone, BAD_LINES))


@pytest.mark.parametrize("case_id, line, field", BAD_LINES, ids=[c[0] for c in BAD_LINES])
def test_bad_lead_line_becomes_an_error_record(bad_line_results, sec, case_id, line, field) -> None:
    entry = bad_line_results[case_id]
    if entry[0] == "all":
        proc, kinds = bad_line_results["all"]
        number = 2 * (1 + [c[0] for c in BAD_LINES].index(case_id))
        _check_batch(proc, kinds, sec, {number: field})
    else:
        proc, kinds = entry
        _check_batch(proc, kinds, sec, {2: field})


def test_mixed_batch_counts_in_equal_counts_out(tmp_path, sec) -> None:
    data, kinds = _batch([line for _, line, _ in BAD_LINES if len(line) < 100_000] * 3)
    path = tmp_path / "leads.jsonl"
    path.write_bytes(data)
    proc = sec.leadops("eval", str(path), "--now", sec.NOW, timeout=120, mem_mb=2048)
    _check_batch(proc, kinds, sec)


@pytest.mark.parametrize("source", ["stdin", ".json file"])
def test_batch_whose_first_line_is_bad_is_still_a_batch(tmp_path, sec, source) -> None:
    """JSON Lines on stdin (or in a file without the .jsonl suffix) whose FIRST line is malformed must not
    turn into 'not a JSON object or JSON Lines' (exit 1) and lose every good line after it."""
    lines = [b'{"id": "x", "email": ', _good(1), _good(2), b'{"id": 5}', _good(3)]
    data = b"\n".join(lines) + b"\n"
    kinds = [(1, "bad"), (2, "good"), (3, "good"), (4, "bad"), (5, "good")]
    if source == "stdin":
        proc = sec.leadops("eval", "-", "--now", sec.NOW, input=data, timeout=60)
    else:
        path = tmp_path / "leads.json"
        path.write_bytes(data)
        proc = sec.leadops("eval", str(path), "--now", sec.NOW, timeout=60)
    _check_batch(proc, kinds, sec)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("LEADOPS_SLOW"), reason="set LEADOPS_SLOW=1 to run the 200k-line batch")
def test_200k_line_batch(tmp_path, sec) -> None:
    bad = [line for _, line, _ in BAD_LINES if len(line) < 1000]
    chunks, kinds, n = [], [], 0
    for i in range(100_000):
        n += 1
        if i % 10 == 0:
            chunks.append(bad[i // 10 % len(bad)])
            kinds.append((n, "bad"))
        else:
            chunks.append(_good(i))
            kinds.append((n, "good"))
        n += 1
        chunks.append(_good(-i))
        kinds.append((n, "good"))
    path = tmp_path / "leads.jsonl"
    path.write_bytes(b"\n".join(chunks) + b"\n")
    proc = sec.leadops("eval", str(path), "--now", sec.NOW, timeout=900, mem_mb=4096)
    _check_batch(proc, kinds, sec)
