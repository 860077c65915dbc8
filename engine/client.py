"""Client SDK: pull the signed bundle from a leadops service, verify it, cache it, evaluate locally.

    client = PolicyClient("http://127.0.0.1:8181", "keys/", ".leadops-cache")
    client.refresh()                      # GET /v1/bundle with If-None-Match; verify; persist; swap
    decision = client.evaluate(lead, now)  # the same engine the service runs, no network
    decision = client.evaluate(hubspot_contact, now, mapping="hubspot")  # a raw CRM record, mapped first

Trust rules (TUF-style, see the policy-as-code notes):

* only bundles whose signature verifies with a trusted key are used, including the cached one at start-up
  (the cache is re-verified, never trusted because it is on disk);
* the highest sequence ever accepted is persisted (``state.json``) and a lower one is refused as a rollback,
  even across restarts and even if the cached bundle file is lost; an equal sequence is a no-op;
* expired bundles are refused (a cached bundle that expired while offline is not used either);
* the last good bundle is written with write-to-temp, fsync, rename, so a crash never leaves a torn cache;
* an unreachable server, an error status, garbage or a truncated download leave the current policy in place:
  ``refresh()`` reports what happened and never raises for them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import httpx

from engine.bundle import DEFAULT_MAX_ARCHIVE, BundleError
from engine.errors import LeadopsError, PolicyError
from engine.signing import TrustedKeys, VerifiedBundle, load_trusted_keys, verify_bundle

log = logging.getLogger("leadops.client")

BUNDLE_FILE = "bundle.tar.gz"
STATE_FILE = "state.json"


class NoPolicyError(LeadopsError):
    """The client has no verified policy yet (never refreshed successfully and no valid cache)."""


@dataclass(frozen=True)
class RefreshResult:
    """What `refresh()` did: `status` is one of updated, not-modified, unchanged, rejected, unreachable, error."""

    status: str
    revision: str | None
    sequence: int | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("updated", "not-modified", "unchanged")


@dataclass(frozen=True)
class _Current:
    verified: VerifiedBundle
    policy_set: Any
    etag: str | None


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never half of it (bundles are public:
    0644 by default)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


class PolicyClient:
    """Fetches, verifies, caches and evaluates a leadops policy bundle (see the module docstring)."""

    def __init__(
        self,
        url: str,
        trusted_keys: TrustedKeys,
        cache_dir: str | os.PathLike,
        *,
        timeout: float = 5.0,
        max_size: int = DEFAULT_MAX_ARCHIVE,
        clock: Callable[[], datetime] | None = None,
        loader: Callable[[VerifiedBundle], Any] | None = None,
        scope: str | None = None,
        http: httpx.Client | None = None,
    ):
        self.url = url.rstrip("/")
        self.bundle_url = self.url if self.url.endswith("/v1/bundle") else self.url + "/v1/bundle"
        self.keys = load_trusted_keys(trusted_keys)
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.max_size = max_size
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.loader = loader or (lambda verified: verified.load_policy_set())
        self.scope = scope
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self._own_http = http is None
        self._lock = threading.Lock()
        self._current: _Current | None = None
        self.trusted_sequence: int | None = None
        self.trusted_revision: str | None = None
        self.last_result: RefreshResult | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._load_cache()

    # ------------------------------------------------------------------ cache

    def _load_cache(self) -> None:
        state: dict[str, Any] = {}
        try:
            state = json.loads((self.cache_dir / STATE_FILE).read_text(encoding="utf-8"))
            if not isinstance(state, dict):
                state = {}
        except (OSError, ValueError):
            state = {}
        seq = state.get("sequence")
        if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0:
            self.trusted_sequence = seq
            rev = state.get("revision")
            self.trusted_revision = rev if isinstance(rev, str) else None
        try:
            data = (self.cache_dir / BUNDLE_FILE).read_bytes()
        except OSError:
            return
        try:
            verified = self._verify(data)
            policy_set = self.loader(verified)
        except (BundleError, PolicyError, LeadopsError) as exc:
            log.warning("cached bundle in %s not used: %s", self.cache_dir, exc)
            return
        etag = state.get("etag") if state.get("sha256") == verified.sha256 else None
        self._current = _Current(verified, policy_set, etag if isinstance(etag, str) else None)
        self._raise_trust(verified)

    def _verify(self, data: bytes) -> VerifiedBundle:
        """Verify bundle bytes against the trusted keys, the clock and the highest sequence trusted so far."""
        return verify_bundle(
            data,
            self.keys,
            now=self.clock(),
            min_sequence=self.trusted_sequence,
            current_revision=self.trusted_revision,
            scope=self.scope,
            max_size=self.max_size,
        )

    def _raise_trust(self, verified: VerifiedBundle) -> None:
        if self.trusted_sequence is None or verified.sequence >= self.trusted_sequence:
            self.trusted_sequence = verified.sequence
            self.trusted_revision = verified.revision

    def _persist(self, verified: VerifiedBundle, etag: str | None) -> None:
        _atomic_write(self.cache_dir / BUNDLE_FILE, verified.raw)
        state = {
            "sequence": verified.sequence,
            "revision": verified.revision,
            "etag": etag,
            "sha256": verified.sha256,
            "expires_at": verified.expires_at,
            "saved_at": self.clock().astimezone(timezone.utc).isoformat(),
        }
        _atomic_write(self.cache_dir / STATE_FILE, json.dumps(state, sort_keys=True).encode("utf-8"))

    # ------------------------------------------------------------------ public API

    @property
    def revision(self) -> str | None:
        cur = self._current
        return cur.verified.revision if cur else None

    @property
    def sequence(self) -> int | None:
        cur = self._current
        return cur.verified.sequence if cur else None

    @property
    def verified(self) -> VerifiedBundle | None:
        cur = self._current
        return cur.verified if cur else None

    @property
    def policy_set(self) -> Any:
        cur = self._current
        if cur is None:
            raise NoPolicyError("no verified policy: refresh() has not succeeded and the cache holds none")
        return cur.policy_set

    def _result(self, status: str, reason: str = "") -> RefreshResult:
        cur = self._current
        result = RefreshResult(
            status, cur.verified.revision if cur else None, cur.verified.sequence if cur else None, reason
        )
        self.last_result = result
        if not result.ok:
            log.warning("policy refresh %s: %s (keeping %s)", status, reason, result.revision or "nothing")
        return result

    def refresh(self) -> RefreshResult:
        """Fetch the bundle if it changed; verify, persist and swap. Never raises for network or bundle faults."""
        with self._lock:
            cur = self._current
            headers = {"Accept": "application/gzip"}
            if cur is not None and cur.etag:
                headers["If-None-Match"] = cur.etag
            try:
                with self._http.stream("GET", self.bundle_url, headers=headers, timeout=self.timeout) as resp:
                    if resp.status_code == 304:
                        return self._result("not-modified")
                    if resp.status_code != 200:
                        return self._result("error", f"server answered HTTP {resp.status_code}")
                    length = resp.headers.get("content-length")
                    if length is not None and length.isdigit() and int(length) > self.max_size:
                        return self._result("rejected", f"bundle of {length} bytes is over the limit {self.max_size}")
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in resp.iter_raw():
                        size += len(chunk)
                        if size > self.max_size:
                            return self._result("rejected", f"bundle is over the limit of {self.max_size} bytes")
                        chunks.append(chunk)
                    etag = resp.headers.get("etag")
            except httpx.HTTPError as exc:
                return self._result("unreachable", f"{type(exc).__name__}: {exc}")
            data = b"".join(chunks)
            try:
                verified = self._verify(data)
            except BundleError as exc:
                return self._result("rejected", str(exc))
            if cur is not None and verified.sha256 == cur.verified.sha256:
                self._current = _Current(cur.verified, cur.policy_set, etag)
                return self._result("unchanged")
            if self.trusted_sequence is not None and verified.sequence == self.trusted_sequence and cur is not None:
                return self._result("unchanged", "same sequence as the trusted bundle")
            try:
                policy_set = self.loader(verified)
            except LeadopsError as exc:
                return self._result("rejected", f"bundle verified but its policy set does not load: {exc}")
            try:
                self._persist(verified, etag)
            except OSError as exc:  # keep serving the new policy; the cache is best effort
                log.warning("could not persist bundle to %s: %s", self.cache_dir, exc)
            self._current = _Current(verified, policy_set, etag)  # the swap
            self._raise_trust(verified)
            return self._result("updated")

    def evaluate(self, lead: Mapping[str, Any], now: datetime, explain: bool = False, *, mapping: str | None = None,
                 activities: list[Any] | None = None) -> Any:
        """Decide `lead` at `now` with the current verified policy (raises LeadError for a bad lead). With
        `mapping` (a preset: "hubspot", "salesforce"), `lead` is a raw CRM record and `activities` its activity
        rows, mapped first exactly as the service's `"mapping"` field does (MappingError is a LeadError)."""
        policy_set = self.policy_set
        if mapping is not None:
            from engine.crm.mapping import preset_for

            lead = preset_for(policy_set, mapping).to_lead(lead, activities)
        return policy_set.evaluate(dict(lead), now, explain=explain)

    # ------------------------------------------------------------------ background polling

    def start(self, interval: float = 60.0) -> None:
        """Refresh every `interval` seconds in a daemon thread until `close()`."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                except Exception:  # pragma: no cover - refresh() already contains its faults
                    log.exception("policy refresh failed")

        self._thread = threading.Thread(target=loop, name="leadops-policy-refresh", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._own_http:
            self._http.close()

    def __enter__(self) -> "PolicyClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
