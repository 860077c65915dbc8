"""The service's fast paths keep its guarantees (issue 13): httptools/uvloop bounds, decisions on the event loop,
the decision log's fast records, and `leadops serve --processes`.

Real servers on loopback (`BackgroundServer` with either protocol, `leadops serve` processes), real files.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.auditlog import canonical_bytes, process_log_path
from engine.bundle import canonical_json
from engine.connections import MAX_HEADER_BYTES
from engine.personal_data import Masker
from engine.server import INLINE_MAX_BODY, BackgroundServer, create_app
from servehelp import ServeProcess
from test_server import LEADS, NOW, wait_for
from test_service_resilience import bundle, keys  # noqa: F401  (fixtures: a key pair, a signed bundle)

PROTOCOLS = [pytest.param(True, id="httptools-uvloop"), pytest.param(False, id="h11-asyncio")]
_FIXED = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
TOO_LARGE = {True: b"HTTP/1.1 431 ", False: b"HTTP/1.1 400 "}  # h11 answers its own size bound with 400


def _read_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


# ------------------------------------------------------------------------------------------ HTTP protocols


@pytest.mark.parametrize("fast", PROTOCOLS)
def test_a_header_block_over_the_bound_is_refused_and_closed(keys, bundle, fast):
    app = create_app(bundle, keys.public_path, watch=False)
    with BackgroundServer(app, fast=fast) as srv:
        if fast:  # h11 bounds only what it buffers incomplete: a block that arrives whole is parsed
            with socket.create_connection((srv.host, srv.port), timeout=5) as s:  # all at once
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 10)
                          + b"\r\n\r\n")
                answer = _read_until_closed(s)
            assert answer.startswith(TOO_LARGE[fast]), answer[:80]
        with socket.create_connection((srv.host, srv.port), timeout=5) as s:  # one endless header, trickled
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            sent, closed = 0, False
            try:
                while sent < 4 * MAX_HEADER_BYTES:
                    s.sendall(b"b" * 2048)
                    sent += 2048
                    time.sleep(0.005)
            except OSError:
                closed = True
            answer = _read_until_closed(s)
        assert answer.startswith(TOO_LARGE[fast]) or closed, answer[:80]
        assert sent <= 2 * MAX_HEADER_BYTES + 65536  # refused near the bound, not after everything was sent
        # many headers, each small, trickled: the sum counts
        with socket.create_connection((srv.host, srv.port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            try:
                for i in range(MAX_HEADER_BYTES // 100 + 10):
                    s.sendall(b"X-H%d: %s\r\n" % (i, b"c" * 100))
                    if i % 20 == 0:
                        time.sleep(0.002)
            except OSError:
                pass
            assert _read_until_closed(s).startswith(TOO_LARGE[fast])
        # just under the bound is fine
        r = httpx.get(srv.url + "/healthz", headers={"X-Ok": "d" * (MAX_HEADER_BYTES - 1024)}, timeout=5)
        assert r.status_code == 200


@pytest.mark.parametrize("fast", PROTOCOLS)
def test_pipelined_requests_are_answered_in_order_and_head_gets_its_headers(keys, bundle, fast):
    app = create_app(bundle, keys.public_path, watch=False)
    body = json.dumps({"lead": LEADS[2], "now": NOW}).encode()
    with BackgroundServer(app, fast=fast) as srv, socket.create_connection((srv.host, srv.port), timeout=5) as s:
        s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                  + b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = _read_until_closed(s)
        expected = httpx.post(srv.url + "/v1/decisions", content=body, headers={"content-type": "application/json"})
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    assert statuses == [b"200", b"200", b"404"], data[:300]
    assert expected.content in data  # the same answer bytes as on a connection of its own


def test_a_single_lead_answers_the_same_bytes_on_the_loop_and_on_the_pool(keys, bundle, tmp_path):
    """Small bodies are decided on the event loop, large ones on the worker pool: same answer, same record."""
    log_path = tmp_path / "decisions.jsonl"
    app = create_app(bundle, keys.public_path, watch=False, decision_log=log_path, clock=lambda: _FIXED)
    small = json.dumps({"lead": LEADS[0], "now": NOW}).encode()
    large = small[:-1] + b" " * (INLINE_MAX_BODY + 1) + b"}"
    bad = json.dumps({"lead": {**LEADS[0], "employees": "many"}, "now": NOW}).encode()
    bad_large = bad[:-1] + b" " * (INLINE_MAX_BODY + 1) + b"}"
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url, timeout=10) as c:
        answers = [c.post("/v1/decisions", content=b, headers={"content-type": "application/json"})
                   for b in (small, large, bad, bad_large)]
    assert [a.status_code for a in answers] == [200, 200, 422, 422]
    assert answers[0].content == answers[1].content and answers[2].content == answers[3].content
    lines = log_path.read_bytes().splitlines()
    assert len(lines) == 4 and lines[0] == lines[1] and lines[2] == lines[3]


# ------------------------------------------------------------------------------------------ decision log

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e-5, 0.00001234, 1e-9, 2.5e-7, 1e16])
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@given(_json_values)
def test_canonical_bytes_are_canonical_json(value):
    try:
        expected: bytes | type = canonical_json(value)
    except (ValueError, UnicodeEncodeError) as exc:
        expected = type(exc)
    try:
        got: bytes | type = canonical_bytes(value)
    except (ValueError, UnicodeEncodeError) as exc:
        got = type(exc)
    assert got == expected


_PERSONAL = st.text(alphabet="ab@.\"\\\n é", min_size=1, max_size=6)


@given(st.fixed_dictionaries({"id": st.text(max_size=3), "email": _PERSONAL, "first_name": _PERSONAL}),
       st.recursive(st.text(alphabet="ab@.\"\\\n é", max_size=10),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["why", "field", "message"]),
                                                                         c, max_size=3), max_leaves=8))
def test_a_record_masking_would_change_is_never_skipped(lead, decision):
    masker = Masker([("email",), ("first_name",)])
    record = {"lead_id": lead["id"], "decision": decision}
    if not masker.may_touch(lead, canonical_bytes(record)):
        assert masker.for_lead(lead)(decision) == decision


def test_each_server_process_has_its_own_decision_log():
    assert process_log_path("/var/log/decisions.jsonl", 0) == Path("/var/log/decisions.0.jsonl")
    assert process_log_path("audit.log", 3) == Path("audit.3.log")
    assert process_log_path("/var/log/decisions", 1) == Path("/var/log/decisions.1")


# ------------------------------------------------------------------------------------------ --processes


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_serve_processes_share_the_port_and_the_signals_with_a_log_each(keys, bundle, tmp_path):
    log_path = tmp_path / "decisions.jsonl"
    logs = [tmp_path / "decisions.0.jsonl", tmp_path / "decisions.1.jsonl"]
    args = ["--bundle", str(bundle), "--key", str(keys.public_path), "--decision-log", str(log_path),
            "--state-dir", str(tmp_path / "state"), "--processes", "2"]

    def logged() -> list[str]:
        return sorted(json.loads(line)["lead_id"] for p in logs for line in p.read_bytes().splitlines())

    with ServeProcess(args, tmp_path) as srv:
        wait_for(lambda: len(_children(srv.proc.pid)) == 2)
        children = _children(srv.proc.pid)
        answered: list[str] = []

        def client(n: int) -> None:
            for i in range(25):
                with httpx.Client(base_url=srv.url, timeout=10) as c:  # a new connection: either process
                    r = c.post("/v1/decisions", json={"lead": {**LEADS[i % 3], "id": f"C{n}-{i}"}, "now": NOW})
                    if r.status_code == 200:
                        answered.append(f"C{n}-{i}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answered) == 150 and logged() == sorted(answered)
        assert all(p.stat().st_size > 0 for p in logs)  # both processes answered (the kernel spreads connections)
        assert not log_path.exists()  # no log under the plain name: one per process
        # logrotate: rename, SIGHUP the parent; every process writes to a new file from then on
        for p in logs:
            p.rename(p.with_name(p.name + ".1"))
        srv.signal(signal.SIGHUP)
        time.sleep(0.3)
        for i in range(20):
            with httpx.Client(base_url=srv.url, timeout=10) as c:
                assert c.post("/v1/decisions", json={"lead": {**LEADS[2], "id": f"R-{i}"}, "now": NOW}).status_code == 200
        assert sorted(json.loads(line)["lead_id"] for p in logs if p.exists() for line in p.read_bytes().splitlines()) \
            == sorted(f"R-{i}" for i in range(20))
        assert srv.proc.poll() is None and _children(srv.proc.pid) == children  # SIGHUP stopped nobody
        srv.signal(signal.SIGTERM)
        assert srv.proc.wait(15) == 0
    assert not [child for child in children if Path(f"/proc/{child}").exists()]  # stopped and reaped
