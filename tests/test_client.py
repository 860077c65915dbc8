"""The client SDK against real servers: the leadops service, and a stdlib HTTP server that misbehaves on purpose
(garbage, error statuses, truncated downloads, rolled-back and expired bundles, a server that is down)."""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import engine
from engine.bundle import build_bundle
from engine.client import BUNDLE_FILE, STATE_FILE, NoPolicyError, PolicyClient
from engine.server import BackgroundServer, create_app
from engine.signing import generate_keypair, sign_bundle

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc)
LEAD = {"id": "L-7", "country": "AU", "state": "QLD", "employees": 300, "seniority": "vp", "source": "website"}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return generate_keypair(tmp_path_factory.mktemp("keys"), "cli")


@pytest.fixture(scope="module")
def files():
    return dict(engine.load_policies(REPO / "policies").source_files)


def make(keys, files, revision: str, sequence: int, *, expires_in="30d", now=None) -> bytes:
    unsigned = build_bundle(files, revision, policy_version="t")
    return sign_bundle(unsigned, keys.private_path, keys.key_id, sequence, expires_in, now=now)


class Scripted:
    """A stdlib HTTP server whose /v1/bundle answer the test sets: (status, headers, body, truncate_to)."""

    def __init__(self):
        self.answer = (200, {}, b"", None)
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                outer.requests.append(dict(self.headers))
                status, headers, body, truncate = outer.answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body if truncate is None else body[:truncate])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port_url() -> str:
    """A loopback URL where nothing listens (bound then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------------------------- happy path


def test_refresh_verify_persist_and_evaluate_like_the_service(keys, files, tmp_path):
    bundle_path = tmp_path / "b.tar.gz"
    bundle_path.write_bytes(make(keys, files, "rev-1", 1))
    app = create_app(bundle_path, keys.public_path, watch=False)
    with BackgroundServer(app) as srv:
        client = PolicyClient(srv.url, keys.public_path, tmp_path / "cache")
        assert client.revision is None
        with pytest.raises(NoPolicyError):
            client.evaluate(LEAD, NOW)
        first = client.refresh()
        assert first.status == "updated" and first.revision == "rev-1" and first.sequence == 1
        assert client.refresh().status == "not-modified"
        # the same engine: the client's local decision equals the service's
        local = client.evaluate(LEAD, NOW).to_dict()
        import httpx

        remote = httpx.post(srv.url + "/v1/decisions", json={"lead": LEAD, "now": NOW.isoformat()}).json()["decision"]
        assert local == remote
        assert local == engine.load_policy_files(files, root="policies", revision="rev-1").evaluate(LEAD, NOW).to_dict()
        client.close()
    cache = tmp_path / "cache"
    assert (cache / BUNDLE_FILE).read_bytes() == bundle_path.read_bytes()
    state = json.loads((cache / STATE_FILE).read_text())
    assert state["sequence"] == 1 and state["revision"] == "rev-1" and state["etag"] == '"rev-1:1"'
    assert sorted(p.name for p in cache.iterdir()) == [BUNDLE_FILE, STATE_FILE], "no temp files left behind"


def test_starts_from_cache_when_the_server_is_down(keys, files, tmp_path):
    cache = tmp_path / "cache"
    with Scripted() as srv:
        srv.answer = (200, {"ETag": '"rev-1:1"'}, make(keys, files, "rev-1", 1), None)
        c = PolicyClient(srv.url, keys.public_path, cache)
        assert c.refresh().status == "updated"
        c.close()
    offline = PolicyClient(free_port_url(), keys.public_path, cache, timeout=1)
    assert offline.revision == "rev-1" and offline.sequence == 1
    result = offline.refresh()
    assert result.status == "unreachable" and not result.ok and result.revision == "rev-1"
    assert offline.evaluate(LEAD, NOW).to_dict()["policy_revision"] == "rev-1"
    offline.close()


def test_sends_if_none_match_after_restart(keys, files, tmp_path):
    with Scripted() as srv:
        srv.answer = (200, {"ETag": '"rev-1:1"'}, make(keys, files, "rev-1", 1), None)
        PolicyClient(srv.url, keys.public_path, tmp_path).refresh()
        again = PolicyClient(srv.url, keys.public_path, tmp_path)
        srv.answer = (304, {"ETag": '"rev-1:1"'}, b"", None)
        assert again.refresh().status == "not-modified"
        assert srv.requests[-1].get("If-None-Match") == '"rev-1:1"'


# --------------------------------------------------------------------------------------------- hostile servers


@pytest.mark.security
@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ((200, {}, b"<html>502 Bad Gateway</html>", None), "rejected"),
        ((200, {}, b"", None), "rejected"),
        ((200, {"Content-Type": "application/gzip"}, os.urandom(5000), None), "rejected"),
        ((500, {}, b"oops", None), "error"),
        ((404, {}, b"", None), "error"),
        ((302, {"Location": "http://127.0.0.1:1/evil"}, b"", None), "error"),
    ],
    ids=["html", "empty", "random-bytes", "http-500", "http-404", "redirect"],
)
def test_garbage_keeps_the_last_good_bundle(keys, files, tmp_path, answer, status):
    with Scripted() as srv:
        srv.answer = (200, {}, make(keys, files, "rev-1", 1), None)
        c = PolicyClient(srv.url, keys.public_path, tmp_path)
        assert c.refresh().status == "updated"
        srv.answer = answer
        result = c.refresh()
        assert result.status == status and result.revision == "rev-1"
        assert c.evaluate(LEAD, NOW).to_dict()["policy_revision"] == "rev-1"
    assert PolicyClient(free_port_url(), keys.public_path, tmp_path).revision == "rev-1"


@pytest.mark.security
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.99])
def test_truncated_download_keeps_the_last_good_bundle(keys, files, tmp_path, fraction):
    with Scripted() as srv:
        srv.answer = (200, {}, make(keys, files, "rev-1", 1), None)
        c = PolicyClient(srv.url, keys.public_path, tmp_path, timeout=3)
        assert c.refresh().ok
        newer = make(keys, files, "rev-2", 2)
        srv.answer = (200, {}, newer, int(len(newer) * fraction))  # Content-Length promises more than is sent
        result = c.refresh()
        assert result.status in ("unreachable", "rejected") and result.revision == "rev-1"
        srv.answer = (200, {}, newer, None)
        assert c.refresh().status == "updated" and c.revision == "rev-2"


@pytest.mark.security
def test_truncated_bundle_with_honest_length_is_rejected(keys, files, tmp_path):
    with Scripted() as srv:
        srv.answer = (200, {}, make(keys, files, "rev-1", 1), None)
        c = PolicyClient(srv.url, keys.public_path, tmp_path)
        c.refresh()
        newer = make(keys, files, "rev-2", 2)
        srv.answer = (200, {}, newer[: len(newer) // 2], None)
        result = c.refresh()
        assert result.status == "rejected" and "malformed-archive" in result.reason and c.revision == "rev-1"


@pytest.mark.security
def test_rollback_refused_even_after_restart_and_cache_loss(keys, files, tmp_path):
    with Scripted() as srv:
        srv.answer = (200, {}, make(keys, files, "rev-2", 2), None)
        c = PolicyClient(srv.url, keys.public_path, tmp_path)
        assert c.refresh().status == "updated"
        srv.answer = (200, {}, make(keys, files, "rev-1", 1), None)  # an old, validly signed bundle replayed
        result = c.refresh()
        assert result.status == "rejected" and "rollback" in result.reason and c.revision == "rev-2"
        srv.answer = (200, {}, make(keys, files, "rev-2b", 2), None)  # same sequence, other content
        assert c.refresh().status == "rejected"
        # restart with the bundle file lost: the trusted sequence survives in state.json
        (tmp_path / BUNDLE_FILE).unlink()
        fresh = PolicyClient(srv.url, keys.public_path, tmp_path)
        assert fresh.revision is None and fresh.trusted_sequence == 2
        srv.answer = (200, {}, make(keys, files, "rev-1", 1), None)
        assert fresh.refresh().status == "rejected"
        srv.answer = (200, {}, make(keys, files, "rev-2", 2), None)
        assert fresh.refresh().status == "updated" and fresh.revision == "rev-2"
        srv.answer = (200, {}, make(keys, files, "rev-3", 3), None)
        assert fresh.refresh().status == "updated" and fresh.sequence == 3


@pytest.mark.security
def test_expired_bundles_are_refused(keys, files, tmp_path):
    with Scripted() as srv:
        srv.answer = (200, {}, make(keys, files, "rev-old", 1, expires_in="1h",
                                    now=datetime.now(timezone.utc) - timedelta(hours=2)), None)
        c = PolicyClient(srv.url, keys.public_path, tmp_path)
        result = c.refresh()
        assert result.status == "rejected" and "expired" in result.reason and c.revision is None
        srv.answer = (200, {}, make(keys, files, "rev-1", 2, expires_in="1h"), None)
        assert c.refresh().status == "updated"
    # a cached bundle that expired while offline is not used at start-up
    later = PolicyClient(free_port_url(), keys.public_path, tmp_path,
                         clock=lambda: datetime.now(timezone.utc) + timedelta(hours=2))
    assert later.revision is None and later.trusted_sequence == 2
    with pytest.raises(NoPolicyError):
        later.evaluate(LEAD, NOW)


@pytest.mark.security
def test_tampered_cache_is_not_trusted(keys, files, tmp_path):
    with Scripted() as srv:
        srv.answer = (200, {}, make(keys, files, "rev-1", 1), None)
        PolicyClient(srv.url, keys.public_path, tmp_path).refresh()
    data = bytearray((tmp_path / BUNDLE_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / BUNDLE_FILE).write_bytes(bytes(data))
    c = PolicyClient(free_port_url(), keys.public_path, tmp_path)
    assert c.revision is None
    (tmp_path / STATE_FILE).write_text("{garbage")
    assert PolicyClient(free_port_url(), keys.public_path, tmp_path).revision is None


@pytest.mark.security
def test_untrusted_key_and_oversize_downloads_are_refused(keys, files, tmp_path):
    other = generate_keypair(tmp_path / "other", "cli")
    with Scripted() as srv:
        srv.answer = (200, {}, make(other, files, "rev-evil", 9), None)
        c = PolicyClient(srv.url, keys.public_path, tmp_path / "c1")
        result = c.refresh()
        assert result.status == "rejected" and "unknown-key" in result.reason
        srv.answer = (200, {}, make(keys, files, "rev-1", 1), None)
        small = PolicyClient(srv.url, keys.public_path, tmp_path / "c2", max_size=1000)
        result = small.refresh()
        assert result.status == "rejected" and "limit" in result.reason


def test_background_refresh_picks_up_a_new_bundle(keys, files, tmp_path):
    import time

    with Scripted() as srv:
        srv.answer = (200, {}, make(keys, files, "rev-1", 1), None)
        c = PolicyClient(srv.url, keys.public_path, tmp_path)
        c.refresh()
        c.start(interval=0.05)
        srv.answer = (200, {}, make(keys, files, "rev-2", 2), None)
        deadline = time.monotonic() + 5
        while c.revision != "rev-2" and time.monotonic() < deadline:
            time.sleep(0.02)
        c.close()
        assert c.revision == "rev-2"
