"""The decision service on a real uvicorn server (loopback, ephemeral port): endpoints, 4xx errors, hot swap."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import statistics
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import jsonschema
import pytest

import engine
from engine.bundle import BundleError, build_bundle, canonical_json
from engine.server import BackgroundServer, create_app
from engine.signing import generate_keypair, sign_bundle, verify_bundle

REPO = Path(__file__).resolve().parent.parent
NOW = "2026-11-20T01:00:00Z"
NOW_DT = datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc)
DECISION_SCHEMA = json.loads((REPO / "schemas" / "decision.schema.json").read_text())

LEADS = [
    {
        "id": "L-1",
        "email": "olivia@coralsoft.com.au",
        "seniority": "director",
        "country": "AU",
        "state": "QLD",
        "employees": 1200,
        "abn": "51824753556",
        "source": "website",
        "company": {"name": "CoralSoft", "domain": "coralsoft.com.au", "industry": "software"},
        "activities": [{"type": "page_view", "at": "2026-11-18T09:12:00+10:00", "url": "/pricing"}],
    },
    {"id": "L-2", "email": "sam@gmail.com", "country": "SG", "employees": 8, "source": "social"},
    {"id": "L-3", "country": "NZ", "employees": 60, "seniority": "manager", "source": "referral"},
]


def policy_files(bump: int = 0) -> dict[str, bytes]:
    """The repo's policy set; `bump` adds points to the first scoring rule (a behaviour change for hot swap)."""
    files = dict(engine.load_policies(REPO / "policies").source_files)
    if bump:
        text = files["policies/scoring.yaml"].decode()
        text = re.sub(r"points: (\d+)", lambda m: f"points: {int(m.group(1)) + bump}", text, count=1)
        files["policies/scoring.yaml"] = text.encode()
    return files


def signed_bundle(keys, revision: str, sequence: int, *, bump: int = 0, expires_in="30d") -> bytes:
    unsigned = build_bundle(policy_files(bump), revision, policy_version="test")
    return sign_bundle(unsigned, keys.private_path, keys.key_id, sequence, expires_in)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_keypair(tmp_path_factory.mktemp("keys"), "svc")


@pytest.fixture(scope="module")
def service(keys, tmp_path_factory):
    d = tmp_path_factory.mktemp("svc")
    bundle_path = d / "bundle.tar.gz"
    bundle_path.write_bytes(signed_bundle(keys, "rev-a", 1))
    app = create_app(bundle_path, keys.public_path, decision_log=d / "decisions.jsonl", poll_interval=0.1)
    with BackgroundServer(app) as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            yield {"srv": srv, "client": client, "dir": d, "log": d / "decisions.jsonl", "app": app}


def expected_decision(files: dict[str, bytes], revision: str, lead: dict, now: datetime) -> dict:
    return engine.load_policy_files(files, root="policies", revision=revision).evaluate(lead, now).to_dict()


# --------------------------------------------------------------------------------------------- endpoints


def test_healthz_and_policy(service, keys):
    c = service["client"]
    r = c.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["revision"] == "rev-a"
    info = c.get("/v1/policy").json()
    assert info["revision"] == "rev-a" and info["sequence"] == 1 and info["key_id"] == keys.key_id
    assert info["policy_version"] == "test" and not info["expired"]
    assert "policies/scoring.yaml" in info["files"]


def test_bundle_download_etag_and_304(service, keys):
    c = service["client"]
    r = c.get("/v1/bundle")
    assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
    etag = r.headers["etag"]
    assert etag == '"rev-a:1"'
    assert verify_bundle(r.content, keys.public_path).revision == "rev-a"
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        r304 = c.get("/v1/bundle", headers={"If-None-Match": header})
        assert r304.status_code == 304 and r304.content == b"" and r304.headers["etag"] == etag
    assert c.get("/v1/bundle", headers={"If-None-Match": '"rev-old:0"'}).status_code == 200


def test_single_decision_is_exactly_the_engine_decision(service):
    c = service["client"]
    files = policy_files()
    for lead in LEADS:
        r = c.post("/v1/decisions", json={"lead": lead, "now": NOW})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["revision"] == "rev-a" and body["sequence"] == 1 and body["now"] == "2026-11-20T01:00:00+00:00"
        assert body["now"] == body["decision"]["evaluated_at"]
        assert body["decision"] == expected_decision(files, "rev-a", lead, NOW_DT)
        jsonschema.validate(body["decision"], DECISION_SCHEMA)


def test_default_now_is_request_time_in_utc(service):
    before = datetime.now(timezone.utc)
    body = service["client"].post("/v1/decisions", json={"lead": LEADS[1]}).json()
    after = datetime.now(timezone.utc)
    now = datetime.fromisoformat(body["now"])
    assert before <= now <= after and body["now"].endswith("+00:00")
    assert body["now"] == body["decision"]["evaluated_at"]


@pytest.mark.parametrize("now", ["2026-11-20T11:00:00+10:00", "2026-11-19T20:00:00-05:00"])
def test_now_keeps_the_callers_offset_like_evaluated_at(service, now: str):
    """One format for one instant: the answer's `now` is written exactly as the decision's `evaluated_at`."""
    single = service["client"].post("/v1/decisions", json={"lead": LEADS[0], "now": now}).json()
    assert single["now"] == single["decision"]["evaluated_at"] == now
    batch = service["client"].post("/v1/decisions", json={"leads": LEADS[:2], "now": now}).json()
    assert batch["now"] == now and all(r["decision"]["evaluated_at"] == now for r in batch["results"])


def test_batch_with_invalid_leads(service):
    leads = [LEADS[0], {"email": "no-id@x.com"}, "not an object", {"id": "L-9", "employees": "many"}, LEADS[2]]
    r = service["client"].post("/v1/decisions", json={"leads": leads, "now": NOW})
    assert r.status_code == 200
    body = r.json()
    assert body["summary"] == {"leads": 5, "decisions": 2, "errors": 3}
    results = body["results"]
    assert [e["index"] for e in results] == [0, 1, 2, 3, 4]
    assert "decision" in results[0] and "decision" in results[4]
    assert results[1]["error"]["field"] == "id"
    assert results[2]["error"]["code"] == "invalid-lead"
    assert results[3]["error"]["field"] == "employees" and results[3]["lead_id"] == "L-9"
    assert results[4]["decision"] == expected_decision(policy_files(), "rev-a", LEADS[2], NOW_DT)


def test_invalid_single_lead_is_422_with_field(service):
    r = service["client"].post("/v1/decisions", json={"lead": {"id": "L-1", "country": "Australia"}, "now": NOW})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == "country" and err["code"] and err["message"]


def _post_raw(service, body: bytes, content_type: str | None = "application/json", **headers):
    h = dict(headers)
    if content_type is not None:
        h["content-type"] = content_type
    return service["client"].post("/v1/decisions", content=body, headers=h)


@pytest.mark.security
@pytest.mark.parametrize(
    ("body", "ctype", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed-json"),
        (b"", "application/json", 400, "malformed-json"),
        (b"\xff\xfe{}", "application/json", 400, "malformed-json"),
        (b'{"lead": {"id": NaN}}', "application/json", 400, "malformed-json"),
        (b'{"lead": {"id": "a"}, "lead": {"id": "b"}}', "application/json", 400, "malformed-json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "malformed-json"),
        (b"[]", "application/json", 400, "invalid-body"),
        (b'"lead"', "application/json", 400, "invalid-body"),
        (b"{}", "application/json", 400, "invalid-body"),
        (b'{"lead": {"id": "a"}, "leads": []}', "application/json", 400, "invalid-body"),
        (b'{"lead": [1]}', "application/json", 400, "invalid-body"),
        (b'{"leads": {"id": "a"}}', "application/json", 400, "invalid-body"),
        (b'{"lead": {"id": "a"}, "debug": true}', "application/json", 400, "invalid-body"),
        (b'{"lead": {"id": "a"}, "explain": "yes"}', "application/json", 400, "invalid-body"),
        (b'{"lead": {"id": "a"}, "now": "yesterday"}', "application/json", 400, "invalid-now"),
        (b'{"lead": {"id": "a"}, "now": "2026-11-20T01:00:00"}', "application/json", 400, "invalid-now"),
        (b'{"lead": {"id": "a"}, "now": 1700000000}', "application/json", 400, "invalid-now"),
        (b'{"lead": {"id": "a"}}', "text/plain", 415, "unsupported-media-type"),
        (b'{"lead": {"id": "a"}}', "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
        (b'{"lead": {"id": "a"}}', None, 415, "unsupported-media-type"),
        (b'{"leads": [' + b",".join([b'{"id": "x"}'] * 1001) + b"]}", "application/json", 413, "batch-too-large"),
        (b'{"lead": {"id": "' + b"a" * (1024 * 1024) + b'"}}', "application/json", 413, "body-too-large"),
    ],
)
def test_bad_requests_are_4xx_json(service, body, ctype, status, code):
    r = _post_raw(service, body, ctype)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]


@pytest.mark.security
def test_chunked_oversize_body_is_413(service):
    def chunks():
        for _ in range(40):
            yield b" " * 65536

    r = service["client"].post("/v1/decisions", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body-too-large"


@pytest.mark.security
def test_unknown_routes_and_methods_are_json(service):
    c = service["client"]
    r = c.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not-found"
    r = c.get("/v1/decisions")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method-not-allowed"
    r = c.post("/v1/bundle")
    assert r.status_code == 405


@pytest.mark.security
def test_slow_client_gets_408(keys, tmp_path):
    bundle_path = tmp_path / "b.tar.gz"
    bundle_path.write_bytes(signed_bundle(keys, "rev-s", 1))
    app = create_app(bundle_path, keys.public_path, body_timeout=0.5, watch=False)
    with BackgroundServer(app) as srv:
        with socket.create_connection((srv.host, srv.port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/decisions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{\"lead\":"
            )
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        assert data.startswith(b"HTTP/1.1 408"), data[:200]
        # the server still answers others
        assert httpx.get(srv.url + "/healthz").status_code == 200


def test_metrics(service):
    c = service["client"]
    c.post("/v1/decisions", json={"lead": LEADS[0], "now": NOW})
    text = c.get("/metrics").text
    assert 'leadops_policy_info{policy_version="test",revision="rev-a",sequence="1"} 1.0' in text
    assert re.search(r'leadops_http_requests_total\{method="POST",path="/v1/decisions",status="200"\} \d', text)
    assert "leadops_http_request_duration_seconds_bucket" in text
    assert re.search(r'leadops_decisions_total\{route="[^"]+",stage="[^"]+"\} \d', text)
    assert "leadops_bundle_sequence 1.0" in text
    assert "leadops_bundle_expiry_timestamp_seconds" in text


def test_openapi_document(service):
    doc = service["client"].get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {"/v1/decisions", "/v1/bundle", "/v1/policy", "/healthz", "/metrics"} <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    # every $ref resolves
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(doc))
    assert refs and all(ref in schemas for ref in refs)
    # the documented decision schema accepts what the service returns
    body = service["client"].post("/v1/decisions", json={"lead": LEADS[0], "now": NOW}).json()
    jsonschema.validate(body["decision"], schemas["Decision"])
    req_schema = {**schemas["DecisionRequest"], "components": doc["components"]}
    jsonschema.validate({"lead": LEADS[0], "now": NOW}, req_schema)


def test_decision_log(service):
    c = service["client"]
    lead = {**LEADS[2], "id": "L-log-1"}
    c.post("/v1/decisions", json={"leads": [lead, {"email": "x"}], "now": NOW})
    lines = [json.loads(line) for line in service["log"].read_text().splitlines()]
    mine = [rec for rec in lines if rec["lead_id"] == "L-log-1"]
    assert len(mine) == 1
    rec = mine[0]
    assert rec["revision"] == "rev-a" and rec["sequence"] == 1 and rec["now"] == NOW
    assert rec["input_sha256"] == "sha256:" + hashlib.sha256(canonical_json(lead)).hexdigest()
    assert rec["decision"] == expected_decision(policy_files(), "rev-a", lead, NOW_DT)
    assert datetime.fromisoformat(rec["time"].replace("Z", "+00:00")).tzinfo is not None
    errors = [rec for rec in lines if rec.get("error", {}).get("field") == "id"]
    assert errors and errors[-1]["lead_id"] is None


# --------------------------------------------------------------------------------------------- loading and swapping


@pytest.mark.security
def test_refuses_to_start_on_an_unverified_bundle(keys, tmp_path):
    path = tmp_path / "b.tar.gz"
    path.write_bytes(build_bundle(policy_files(), "unsigned", policy_version="1"))
    with pytest.raises(BundleError) as exc:
        create_app(path, keys.public_path)
    assert "missing-signature" in str(exc.value)
    other = generate_keypair(tmp_path / "other", "svc")
    path.write_bytes(signed_bundle(other, "wrong-key", 1))  # kid: the other key's own thumbprint
    with pytest.raises(BundleError) as exc:
        create_app(path, keys.public_path)
    assert "unknown-key" in str(exc.value)
    unsigned = build_bundle(policy_files(), "wrong-key", policy_version="1")
    path.write_bytes(sign_bundle(unsigned, other.private_path, "svc", 1))  # the trusted key's name as kid
    with pytest.raises(BundleError) as exc:
        create_app(path, keys.public_path)
    assert "bad-signature" in str(exc.value)


def test_watch_directory_starts_empty_then_serves(keys, tmp_path):
    watch = tmp_path / "bundles"
    watch.mkdir()
    app = create_app(watch, keys.public_path, poll_interval=0.05)
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/healthz").status_code == 503
        r = c.post("/v1/decisions", json={"lead": LEADS[0]})
        assert r.status_code == 503 and r.json()["error"]["code"] == "no-policy"
        write_atomic(watch / "one.tar.gz", signed_bundle(keys, "rev-1", 1))
        write_atomic(watch / "two.tar.gz", signed_bundle(keys, "rev-2", 2))
        wait_for(lambda: c.get("/healthz").json().get("revision") == "rev-2")
        # an older bundle dropped in later is a rollback and is ignored
        write_atomic(watch / "zero.tar.gz", signed_bundle(keys, "rev-0", 0))
        time.sleep(0.3)
        health = c.get("/healthz").json()
        assert health["revision"] == "rev-2" and health["status"] == "degraded"
        assert "rollback" in " ".join(health["problems"])


def test_bad_bundle_keeps_last_good_and_recovers(keys, tmp_path):
    path = tmp_path / "b.tar.gz"
    good = signed_bundle(keys, "rev-good", 4)
    path.write_bytes(good)
    app = create_app(path, keys.public_path, poll_interval=0.05)
    with BackgroundServer(app) as srv, httpx.Client(base_url=srv.url) as c:
        bad_cases = {
            "unsigned": build_bundle(policy_files(), "rev-unsigned", policy_version="1"),
            "rollback": signed_bundle(keys, "rev-old", 3),
            "expired": signed_bundle(keys, "rev-exp", 9, expires_in=1),
            "garbage": b"\x1f\x8b garbage",
            "policy-does-not-compile": sign_bundle(
                build_bundle({**policy_files(), "policies/scoring.yaml": b"kind: scoring\nbogus: 1\n"}, "rev-broken",
                             policy_version="1"),
                keys.private_path, keys.key_id, 10,
            ),
        }
        time.sleep(1.1)  # let the 1-second bundle expire
        for name, data in bad_cases.items():
            write_atomic(path, data)
            wait_for(lambda: c.get("/healthz").json()["status"] == "degraded")
            health = c.get("/healthz").json()
            assert health["revision"] == "rev-good", name
            if name == "policy-does-not-compile":
                assert "does not compile" in " ".join(health["problems"])
            assert c.post("/v1/decisions", json={"lead": LEADS[0]}).json()["revision"] == "rev-good"
            write_atomic(path, good)  # put the good bundle back: healthy again
            wait_for(lambda: c.get("/healthz").json()["status"] == "ok")
        text = c.get("/metrics").text
        assert re.search(r'leadops_bundle_reloads_total\{result="rejected"\} [5-9]', text)
        assert "does not compile" not in c.get("/healthz").text  # recovered: the broken one is gone


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def _hammer(url: str, stop: threading.Event, out: list, lead: dict) -> None:
    with httpx.Client(base_url=url, timeout=10) as c:
        while not stop.is_set():
            start = time.perf_counter()
            try:
                r = c.post("/v1/decisions", json={"lead": lead, "now": NOW})
                out.append((time.perf_counter() - start, r.status_code, r.json() if r.status_code == 200 else r.text))
            except httpx.HTTPError as exc:  # a failed request is a failure of the test, recorded not raised
                out.append((time.perf_counter() - start, 0, repr(exc)))


def run_load(url: str, seconds: float, clients: int, lead: dict, during=None) -> list:
    stop = threading.Event()
    results: list[list] = [[] for _ in range(clients)]
    threads = [threading.Thread(target=_hammer, args=(url, stop, results[i], lead)) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        if during is not None:
            during()
        remaining = seconds
        end = time.monotonic() + remaining
        while time.monotonic() < end:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    return [item for chunk in results for item in chunk]


@pytest.mark.security
def test_hot_swap_under_concurrent_requests(keys, tmp_path):
    """4 clients post continuously while the bundle is swapped twice and a bad bundle is dropped in: zero failed
    requests, and every answer is exactly the decision of the revision it names (never a half-loaded policy)."""
    path = tmp_path / "live.tar.gz"
    path.write_bytes(signed_bundle(keys, "rev-1", 1))
    lead = LEADS[0]
    expected = {
        "rev-1": expected_decision(policy_files(), "rev-1", lead, NOW_DT),
        "rev-2": expected_decision(policy_files(bump=7), "rev-2", lead, NOW_DT),
        "rev-3": expected_decision(policy_files(bump=11), "rev-3", lead, NOW_DT),
    }
    assert expected["rev-1"]["score"] != expected["rev-2"]["score"], "the swap must change behaviour"
    app = create_app(path, keys.public_path, poll_interval=0.05)
    with BackgroundServer(app) as srv:
        url = srv.url

        def swaps():
            time.sleep(0.7)
            write_atomic(path, signed_bundle(keys, "rev-2", 2, bump=7))
            wait_for(lambda: httpx.get(url + "/healthz").json()["revision"] == "rev-2")
            time.sleep(0.5)
            tampered = bytearray(signed_bundle(keys, "rev-bad", 3, bump=3))
            write_atomic(path, bytes(tampered[:-30]))  # truncated: rejected, rev-2 stays
            time.sleep(0.5)
            assert httpx.get(url + "/healthz").json()["revision"] == "rev-2"
            write_atomic(path, signed_bundle(keys, "rev-3", 3, bump=11))
            wait_for(lambda: httpx.get(url + "/healthz").json()["revision"] == "rev-3")

        results = run_load(url, 0.7, 4, lead, during=swaps)
    failures = [r for r in results if r[1] != 200]
    assert not failures, failures[:3]
    seen = set()
    for _, _, body in results:
        rev = body["revision"]
        seen.add(rev)
        assert body["decision"] == expected[rev], f"answer for {rev} is not that revision's decision"
        assert body["decision"]["policy_revision"] == rev
    assert seen == {"rev-1", "rev-2", "rev-3"}
    assert len(results) > 100


@pytest.mark.slow
def test_load_report(keys, tmp_path):
    """A bounded load test: LEADOPS_LOAD_CLIENTS clients for LEADOPS_LOAD_SECONDS on loopback; prints req/s, p50, p99."""
    seconds = float(os.environ.get("LEADOPS_LOAD_SECONDS", "3"))
    clients = int(os.environ.get("LEADOPS_LOAD_CLIENTS", "4"))
    path = tmp_path / "b.tar.gz"
    path.write_bytes(signed_bundle(keys, "rev-load", 1))
    app = create_app(path, keys.public_path, decision_log=tmp_path / "log.jsonl", poll_interval=0.5)
    with BackgroundServer(app) as srv:
        start = time.perf_counter()
        results = run_load(srv.url, seconds, clients, LEADS[0])
        elapsed = time.perf_counter() - start
    assert all(r[1] == 200 for r in results)
    latencies = sorted(r[0] for r in results)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"\nload: {len(results)} requests, {clients} clients, {elapsed:.1f} s: {len(results) / elapsed:.0f} req/s, "
          f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")
