"""The decision service: a Starlette app on uvicorn that serves only verified bundles.

Endpoints (see `OPENAPI` for the full contract):

* ``GET /v1/bundle`` — the active signed bundle (``application/gzip``), ``ETag: "<revision>:<sequence>"``,
  ``304`` when ``If-None-Match`` matches;
* ``POST /v1/decisions`` — ``{"lead": {...}}`` or ``{"leads": [...]}`` plus optional ``"mapping"`` (a preset:
  the leads are raw CRM records, e.g. HubSpot API JSON), ``"now"`` (RFC 3339 with an
  offset; default: the request time in UTC) and ``"explain"``; each decision is exactly ``Decision.to_dict()``;
* ``GET /v1/policy`` — revision, sequence, expiry and files of the active bundle; ``GET /healthz``;
  ``GET /metrics`` (Prometheus text); ``GET /openapi.json`` (OpenAPI 3.1).

Hot swap: a background task polls the bundle file (or every ``*.tar.gz`` in the watched directory) by mtime and
size, then by SHA-256; a changed bundle is verified (signature, expiry, no rollback below the active sequence),
compiled into a complete PolicySet, and only then published by replacing one reference. Each request reads that
reference once, so it is answered entirely by one policy. A bad bundle is logged and the last good one stays.

Trust across restarts (TUF): with a state directory, every published bundle is persisted with its sequence
(engine/trust_state.py); a restarted service never accepts a sequence below it and starts from the last good
bundle when the configured one is missing or broken. A bundle that expires while it is served keeps serving
(``/healthz`` degraded, a ``Leadops-Warning`` header on answers), and so does the same bundle after a restart;
a bundle that is already expired when first seen is refused.

Bounded work: batches and bodies over `INLINE_MAX_BODY` are parsed, decided and rendered on a bounded thread
pool, never on the event loop, so ``/healthz`` and ``/metrics`` answer while they run; a single lead in a small
body is decided on the event loop (cheaper than the handoff to a thread, and bounded by the policy's runtime
cost budget); at most `max_pending` decision
requests are in flight (more: 503 ``overloaded``), their bodies share a byte budget (503 ``busy``), and each
has a deadline (504 ``deadline-exceeded``; a batch stops between leads). Connection limits: engine/connections.py.

Bad requests get a 4xx JSON error ``{"error": {"code", "message", "field"?}}``: wrong content type (415), body over
the limit (413), slow body (408), malformed JSON or wrong shape (400), an invalid single lead (422, naming the
field). In a batch, each invalid lead gets its own error entry and the others are decided. A client that hangs up
is not an error (counted with status 499). A decision log that cannot be written (full disk) answers 503 and
marks ``/healthz`` degraded: no decision is answered that was not recorded (engine/auditlog.py).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field as dc_field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.admission import BudgetExhausted, ByteBudget, DeadlineExceeded, Job, BodyHold
from engine.auditlog import AuditLogUnavailable, DecisionLog, canonical_bytes
from engine.bundle import BundleError
from engine import jsonstrict
from engine.fastjson import UNDECIDED, LeadDecoder, compact_bytes
from engine.connections import ConnectionLimits, uvicorn_options
from engine.errors import LeadError, LeadopsError, PolicyError
from engine.expr.sandbox import MAX_DATETIME_YEAR, MIN_DATETIME_YEAR
from engine.personal_data import Masker
from engine.policyset import parse_instant
from engine.signing import TrustedKeys, VerifiedBundle, load_trusted_keys, verify_bundle
from engine.trust_state import TrustRecord, TrustState

log = logging.getLogger("leadops.server")

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_BATCH = 1000
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))
DEFAULT_MAX_PENDING = 256
DEFAULT_MAX_INFLIGHT_BYTES = 64 * 1024 * 1024
# A request body up to this size is parsed on the event loop, and a single lead in it is decided there too:
# that costs ~0.15 ms, a fraction of the handoff to a worker thread and back (and its fight for the interpreter
# lock). Batches and larger bodies go to the worker pool, so /healthz never waits behind them. A single lead
# costs at most the policy's runtime cost budget; 32 KiB is ~50 typical leads of JSON, parsed in well under 1 ms.
INLINE_MAX_BODY = 32 * 1024
SWITCH_INTERVAL = 0.001  # seconds a thread may hold the interpreter lock while another waits (Python's default: 5 ms)
KNOWN_PATHS = ("/v1/bundle", "/v1/decisions", "/v1/policy", "/healthz", "/metrics", "/openapi.json")


@dataclass(frozen=True)
class Active:
    """One fully loaded policy: published by a single reference assignment, never mutated."""

    verified: VerifiedBundle
    policy_set: Any
    etag: str
    loaded_at: datetime
    source: str
    masker: Masker = dc_field(default_factory=lambda: Masker([]))

    @property
    def revision(self) -> str:
        return self.verified.revision

    @property
    def sequence(self) -> int:
        return self.verified.sequence


def make_etag(verified: VerifiedBundle) -> str:
    """`"<revision>:<sequence>"`: the revision names the policy; the sequence changes when it is re-signed."""
    text = f"{verified.revision}:{verified.sequence}"
    if any(c == '"' or ord(c) < 0x21 or ord(c) == 0x7F for c in text):
        text = f"sha256-{verified.sha256}"
    return f'"{text}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag or candidate == etag.strip('"'):
            return True
    return False


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "leadops_http_requests", "HTTP requests answered", ["method", "path", "status"], registry=r
        )
        self.latency = Histogram(
            "leadops_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "path"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.decisions = Counter("leadops_decisions", "Decisions made", ["stage", "route"], registry=r)
        self.lead_errors = Counter("leadops_lead_errors", "Leads rejected", ["code"], registry=r)
        self.policy_info = Gauge(
            "leadops_policy_info", "The active policy (value 1)", ["revision", "policy_version", "sequence"], registry=r
        )
        self.sequence = Gauge("leadops_bundle_sequence", "Sequence of the active bundle", registry=r)
        self.expires = Gauge(
            "leadops_bundle_expiry_timestamp_seconds", "Expiry of the active bundle (Unix time)", registry=r
        )
        self.reloads = Counter("leadops_bundle_reloads", "Bundle load attempts", ["result"], registry=r)
        self.rejected = Counter("leadops_requests_rejected", "Requests shed before deciding", ["reason"], registry=r)


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def input_hash(lead: Any) -> str:
    try:
        return "sha256:" + hashlib.sha256(canonical_bytes(lead)).hexdigest()
    except (TypeError, ValueError):
        return "sha256:" + hashlib.sha256(repr(lead).encode()).hexdigest()


def _label(decision: dict[str, Any], key: str, subkeys: tuple[str, ...]) -> str:
    """A bounded metric label from a decision: decision[key] if a string, else its first string sub-field."""
    value = decision.get(key)
    if isinstance(value, str):
        return value[:64]
    if isinstance(value, dict):
        for sub in subkeys:
            if isinstance(value.get(sub), str):
                return value[sub][:64]
    return "none"


class PolicyService:
    """The service state: the active policy, the watcher, metrics, the trust state and the decision log."""

    def __init__(
        self,
        source: str | os.PathLike,
        trusted_keys: TrustedKeys,
        *,
        decision_log: str | os.PathLike | None = None,
        now_provider: Callable[[], datetime] | None = None,
        clock: Callable[[], datetime] | None = None,
        loader: Callable[[VerifiedBundle], Any] | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        scope: str | None = None,
        state_dir: str | os.PathLike | None = None,
        log_personal_data: bool = False,
    ):
        self.source = Path(source)
        self.watch_dir = self.source.is_dir()
        self.keys = load_trusted_keys(trusted_keys)
        self.now_provider = now_provider or (lambda: datetime.now(timezone.utc))
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.loader = loader or (lambda verified: verified.load_policy_set())
        self.poll_interval = poll_interval
        self.scope = scope
        self.log_personal_data = log_personal_data
        self.metrics = _Metrics()
        self._decision_counters: dict[tuple[str, str], Any] = {}
        self.decision_log = DecisionLog(decision_log) if decision_log else None
        if self.decision_log is not None and self.decision_log.repaired_bytes:
            log.warning("decision log %s ended in a torn record: %d bytes moved to %s.torn", decision_log,
                        self.decision_log.repaired_bytes, decision_log)
        self.active: Active | None = None
        self.errors: dict[str, str] = {}  # bundle path -> why it was rejected (while it stays as it is)
        self.state_problem: str | None = None
        self.in_flight: Callable[[], dict[str, int]] = lambda: {"requests": 0, "body_bytes": 0}
        self.last_error_at: datetime | None = None
        self._seen: dict[Path, tuple[int, int, int]] = {}
        self._reload_lock = threading.Lock()
        self.trust = TrustState(state_dir) if state_dir is not None else None
        self.floor: TrustRecord | None = None  # the persisted highest verified sequence
        self._restore_floor()
        self.reload()
        if self.active is None:
            self._start_from_last_good()
        if self.active is None:
            log.error("no verified bundle to serve (%s); answering 503 until a valid bundle appears",
                      self.last_error or f"nothing at {self.source}")

    @property
    def last_error(self) -> str | None:
        return "; ".join(self.errors.values()) if self.errors else None

    # ------------------------------------------------------------------ trust state (survives restarts)

    def _restore_floor(self) -> None:
        if self.trust is None:
            return
        record, problem = self.trust.load()
        if problem:  # unreadable: the last good bundle itself still sets the floor, if it verifies
            self.state_problem = problem
            log.warning("%s", problem)
            data = self.trust.last_good()
            v = self._verify_last_good(data, 0) if data is not None else None
            record = TrustRecord(v.sequence, v.revision, v.sha256, 0) if v is not None else None
        self.floor = record

    def _verify_last_good(self, data: bytes, verified_at: int) -> VerifiedBundle | None:
        """The last good bundle verified at the time it was trusted (else now): its signature must still hold."""
        for when in (datetime.fromtimestamp(verified_at, timezone.utc), self.clock()):
            try:
                return verify_bundle(data, self.keys, now=when, scope=self.scope)
            except BundleError:
                continue
        return None

    def _start_from_last_good(self) -> None:
        """Serve the persisted last good bundle: verified again, at the time it was first trusted."""
        if self.trust is None or self.floor is None:
            return
        data = self.trust.last_good()
        if data is None or hashlib.sha256(data).hexdigest() != self.floor.sha256:
            self.state_problem = f"the last good bundle in {self.trust.directory} is missing or altered"
            log.error("%s", self.state_problem)
            return
        verified = self._verify_last_good(data, self.floor.verified_at)
        try:
            if verified is None:
                raise BundleError("bad-signature", "its signature no longer verifies with the trusted keys")
            policy_set = self.loader(verified)
        except (LeadopsError, BundleError) as exc:
            self.state_problem = f"the last good bundle in {self.trust.directory} no longer loads: {exc}"
            log.error("%s", self.state_problem)
            return
        self._publish(verified, policy_set, self.trust.directory / "last-good.tar.gz")
        for path in self._candidates():  # the configured bundle is this very bundle: not a problem
            try:
                if hashlib.sha256(path.read_bytes()).hexdigest() == verified.sha256:
                    self.errors.pop(str(path), None)
            except OSError:
                pass

    def _persist(self, verified: VerifiedBundle) -> bool:
        """Record `verified` as the last good bundle; False when the state directory cannot take it."""
        if self.trust is None:
            return True
        record = TrustRecord(verified.sequence, verified.revision, verified.sha256, int(self.clock().timestamp()))
        try:
            self.trust.save(record, verified.raw)
        except (OSError, ValueError) as exc:
            self.state_problem = f"cannot persist the trust state in {self.trust.directory}: {exc}"
            log.error("%s", self.state_problem)
            return False
        self.floor = record
        self.state_problem = None
        return True

    # ------------------------------------------------------------------ loading and hot swap

    def _candidates(self) -> list[Path]:
        if not self.watch_dir:
            return [self.source]
        try:
            return sorted(p for p in self.source.glob("*.tar.gz") if p.is_file())
        except OSError:
            return []

    def _record_error(self, path: Path, message: str) -> None:
        self.errors[str(path)] = f"{path}: {message}"
        self.last_error_at = self.clock()
        self.metrics.reloads.labels("rejected").inc()
        log.warning("bundle %s rejected, keeping %s: %s", path, self.active.revision if self.active else "nothing",
                    message)

    def _trusted_floor(self) -> tuple[int | None, str | None]:
        """The lowest acceptable sequence and the revision it names: the active bundle's or the persisted one."""
        current, floor = self.active, self.floor
        if current is not None and (floor is None or current.sequence >= floor.sequence):
            return current.sequence, current.revision
        if floor is not None:
            return floor.sequence, floor.revision
        return None, None

    def reload(self) -> bool:
        """Check the source for a changed bundle; load and publish it when it is valid and newer.

        Returns True when a new policy was published. Never raises for a bad bundle (it is logged).
        """
        with self._reload_lock:
            valid: list[tuple[VerifiedBundle, Path]] = []
            candidates = self._candidates()
            for gone in set(self._seen) - set(candidates):  # a removed file is no longer a problem
                self._seen.pop(gone, None)
                self.errors.pop(str(gone), None)
            for path in candidates:
                try:
                    st = path.stat()
                except OSError:
                    if not self.watch_dir and str(path) not in self.errors:
                        self._seen.pop(path, None)
                        self._record_error(path, "no bundle file here")
                    continue
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if self._seen.get(path) == stamp:
                    continue
                self._seen[path] = stamp
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    self._record_error(path, f"cannot read: {exc.strerror}")
                    continue
                current = self.active
                if current is not None and hashlib.sha256(data).hexdigest() == current.verified.sha256:
                    self.errors.pop(str(path), None)  # back to the active bundle
                    continue
                min_sequence, current_revision = self._trusted_floor()
                try:
                    verified = verify_bundle(
                        data,
                        self.keys,
                        now=self.clock(),
                        min_sequence=min_sequence,
                        current_revision=current_revision,
                        scope=self.scope,
                    )
                except BundleError as exc:
                    self._record_error(path, str(exc))
                    continue
                self.errors.pop(str(path), None)
                if current is not None and verified.sequence == current.sequence:
                    continue  # the same sequence and revision: nothing new (TUF: discard an equal version)
                valid.append((verified, path))
            # the newest first; a bundle whose policy set does not compile is skipped (and reported)
            for verified, path in sorted(valid, key=lambda item: item[0].sequence, reverse=True):
                try:
                    policy_set = self.loader(verified)
                except PolicyError as exc:
                    detail = "; ".join(d.format().replace("\n", " ") for d in exc.diagnostics[:5])
                    self._record_error(path, f"policy set does not compile: {detail}")
                    continue
                except LeadopsError as exc:
                    self._record_error(path, f"policy set does not load: {exc}")
                    continue
                except Exception as exc:  # an engine bug must not take the service down or swap in anything
                    log.exception("loading %s failed", path)
                    self._record_error(path, f"policy set failed to load (internal error {type(exc).__name__})")
                    continue
                if not self._persist(verified):  # TUF: trusted only once persisted, so a restart cannot go back
                    self._record_error(path, f"not served: {self.state_problem}")
                    self._seen.pop(path, None)  # tried again at the next poll
                    continue
                self._publish(verified, policy_set, path)
                return True
            return False

    def _publish(self, verified: VerifiedBundle, policy_set: Any, path: Path) -> None:
        schema = getattr(getattr(policy_set, "lead_schema", None), "schema", None)
        masker = Masker([]) if self.log_personal_data else Masker.from_schema(schema)
        new = Active(verified, policy_set, make_etag(verified), self.clock(), str(path), masker)
        old = self.active
        self.active = new  # the swap: one reference assignment
        m = self.metrics
        m.reloads.labels("loaded").inc()
        m.policy_info.clear()
        m.policy_info.labels(verified.revision, verified.policy_version, str(verified.sequence)).set(1)
        m.sequence.set(verified.sequence)
        m.expires.set(verified.expires_at)
        log.info(
            "serving revision %s sequence %d from %s (was %s)",
            verified.revision,
            verified.sequence,
            path,
            old.revision if old else "nothing",
        )

    async def watch(self) -> None:
        from anyio import to_thread

        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await to_thread.run_sync(self.reload)
            except Exception:  # never let the watcher die; the next poll tries again
                log.exception("bundle watcher failed")

    def problems(self) -> list[str]:
        """Why the service is degraded (empty when healthy): expiry, rejected bundles, trust state, decision log."""
        active = self.active
        problems = []
        if active is not None and active.verified.is_expired(self.clock()):
            problems.append(
                f"active bundle expired at {_iso(active.verified.expires_datetime())}; still serving it as the last "
                "good bundle: publish a freshly signed bundle"
            )
        problems.extend(f"bundle rejected (still serving the last good one): {msg}" for msg in self.errors.values())
        if self.state_problem:
            problems.append(self.state_problem)
        if self.decision_log is not None and self.decision_log.problem:
            problems.append(f"{self.decision_log.problem}; decisions answer 503 until it can be written")
        return problems

    def health(self) -> tuple[int, dict[str, Any]]:
        """The /healthz answer: 503 while nothing is served, else 200 with status "ok" or "degraded"."""
        active = self.active
        if active is None:
            reason = self.last_error or "no verified bundle loaded"
            return 503, {"status": "unavailable", "reason": reason, "problems": self.problems()}
        problems = self.problems()
        return 200, {
            "status": "degraded" if problems else "ok",
            "revision": active.revision,
            "sequence": active.sequence,
            "problems": problems,
            "in_flight": self.in_flight(),
        }

    # ------------------------------------------------------------------ decisions

    def decide(self, active: Active, leads: list[Any], now: datetime, explain: bool,
               mapping: Any = None, job: Job | None = None) -> list[dict[str, Any]]:
        """One entry per lead (decision or error); stops with DeadlineExceeded when `job`'s deadline passes.

        `mapping` (engine/crm): each lead is a raw CRM record, mapped before it is decided."""
        results: list[dict[str, Any]] = []
        for index, lead in enumerate(leads):
            if job is not None and job.expired():
                raise DeadlineExceeded()
            lead_id = lead.get("id") if isinstance(lead, dict) else None
            entry: dict[str, Any] = {"index": index, "lead_id": lead_id if isinstance(lead_id, str) else None}
            if not isinstance(lead, dict):
                error = {"code": "invalid-lead", "message": "a lead must be a JSON object", "field": ""}
                entry["error"] = error
                self.metrics.lead_errors.labels("invalid-lead").inc()
            else:
                try:
                    mapped = lead if mapping is None else mapping.to_lead(lead, None, index + 1)  # a CRM record
                    decision = active.policy_set.evaluate(mapped, now, explain=explain).to_dict()
                except LeadError as exc:
                    entry["error"] = {"code": exc.code, "message": exc.message, "field": exc.field}
                    self.metrics.lead_errors.labels(exc.code).inc()
                except LeadopsError as exc:
                    code = getattr(exc, "code", type(exc).__name__)
                    entry["error"] = {"code": code, "message": str(exc), "field": ""}
                    self.metrics.lead_errors.labels(str(code)).inc()
                else:
                    entry["decision"] = decision
                    self._decision_counter(
                        _label(decision, "stage", ("to", "id")), _label(decision, "route", ("queue", "team", "rule"))
                    ).inc()
            if "error" in entry:
                entry["error"] = active.masker.for_lead(lead)(entry["error"])  # errors never quote personal data
            results.append(entry)
        return results

    def _decision_counter(self, stage: str, route: str) -> Any:
        """The decisions counter of (stage, route), looked up once (prometheus' labels() is a measurable cost)."""
        counter = self._decision_counters.get((stage, route))
        if counter is None:
            counter = self.metrics.decisions.labels(stage, route)
            if len(self._decision_counters) < 4096:  # the policy's stages and routes: a few dozen
                self._decision_counters[(stage, route)] = counter
        return counter

    def log_lines(self, active: Active, leads: list[Any], results: list[dict[str, Any]], now: datetime) -> bytes:
        """The audit records of answered decisions, one canonical JSON line each, personal data masked unless
        `log_personal_data` (a decision is walked by the masker only when its line holds a personal value)."""
        stamp = _iso(self.clock())
        masker = active.masker
        lines = []
        for lead, entry in zip(leads, results):
            record: dict[str, Any] = {
                "time": stamp,
                "revision": active.revision,
                "sequence": active.sequence,
                "lead_id": entry["lead_id"],
                "input_sha256": input_hash(lead),
                "now": _iso(now),
            }
            if "decision" in entry:
                record["decision"] = entry["decision"]
            else:
                record["error"] = entry["error"]  # masked when it was made
            line = canonical_bytes(record)
            if "decision" in record and masker.may_touch(lead, line):
                record["decision"] = masker.for_lead(lead)(entry["decision"])
                line = canonical_bytes(record)
            lines.append(line + b"\n")
        return b"".join(lines)

    def close(self) -> None:
        if self.decision_log is not None:
            self.decision_log.close()


# ---------------------------------------------------------------------------------------------- HTTP


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers


class _ClientGone(Exception):
    """The client hung up before its request was complete: nothing to answer, and not an error of ours."""


def _error(status: int, code: str, message: str, field: str | None = None,
           headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if field is not None:
        body["error"]["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int, timeout: float, hold: BodyHold) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise _ApiError(400, "bad-request", "Content-Length is not a number")
        if int(length) > limit:
            raise _ApiError(413, "body-too-large", f"request body is {int(length)} bytes; the limit is {limit}")
        hold.take(int(length))
    chunks: list[bytes] = []
    size = 0

    async def collect() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _ApiError(413, "body-too-large", f"request body exceeds the limit of {limit} bytes")
            if size > hold.bytes:
                hold.take(size - hold.bytes)
            chunks.append(chunk)

    try:
        async with asyncio.timeout(timeout):  # no task per request, unlike wait_for
            await collect()
    except TimeoutError:
        raise _ApiError(408, "request-timeout", f"request body not received within {timeout:g} s") from None
    except ClientDisconnect:
        raise _ClientGone() from None
    return b"".join(chunks)


def parse_now(value: Any) -> datetime:
    """The request's `now`: 400 when it is not an RFC 3339 date-time with an offset, 422 when out of range."""
    if not isinstance(value, str) or len(value) > 64:
        raise _ApiError(400, "invalid-now", "'now' must be an RFC 3339 date-time string with an offset", "now")
    try:
        parsed = parse_instant(value)
    except ValueError as exc:
        if str(exc) == "no UTC offset":
            raise _ApiError(400, "invalid-now", "'now' needs a UTC offset (e.g. 2025-03-04T09:00:00Z)", "now") from None
        raise _ApiError(400, "invalid-now", f"'now' is not an RFC 3339 date-time: {value[:40]!r}", "now") from None
    try:
        instant = parsed.astimezone(timezone.utc)
    except OverflowError:
        instant = None
    if instant is None or not all(MIN_DATETIME_YEAR <= d.year <= MAX_DATETIME_YEAR for d in (parsed, instant)):
        raise _ApiError(
            422, "now-out-of-range",
            f"'now' must be an instant in the years {MIN_DATETIME_YEAR}–{MAX_DATETIME_YEAR} (in UTC and as written)",
            "now",
        )
    return parsed


def _render(content: Any) -> bytes:
    """The JSON bytes Starlette's JSONResponse would send (orjson where it writes the same bytes); raises
    UnicodeEncodeError for a lone surrogate. Non-finite numbers never reach an answer: see `canonical_bytes`."""
    return compact_bytes(content)


_UNENCODABLE = {
    "code": "unencodable-decision",
    "message": "the decision holds a value JSON cannot carry (a lone surrogate or a non-finite number); "
               "fix the policy expression that produced it",
    "field": "",
}


def _render_results(single: bool, meta: dict[str, Any], results: list[dict[str, Any]]) -> tuple[int, bytes]:
    """The answer's status and bytes; a decision that cannot be encoded becomes that lead's error."""
    def body() -> tuple[int, Any]:
        if single:
            entry = results[0]
            if "error" in entry:
                return 422, {"error": entry["error"], **meta}
            return 200, {**meta, "decision": entry["decision"]}
        errors = sum(1 for e in results if "error" in e)
        summary = {"leads": len(results), "decisions": len(results) - errors, "errors": errors}
        return 200, {**meta, "results": results, "summary": summary}

    status, content = body()
    try:
        return status, _render(content)
    except (ValueError, UnicodeEncodeError):
        for entry in results:
            if "decision" in entry:
                try:
                    _render(entry["decision"])
                except (ValueError, UnicodeEncodeError):
                    del entry["decision"]
                    entry["error"] = dict(_UNENCODABLE)
        status, content = body()
        return status, _render(content)


def _loads_body(body: bytes) -> Any:
    """The request body's JSON value, exactly as `jsonstrict.loads` reads it (and with its errors): orjson
    where fastjson proves the two agree (it refuses NaN and Infinity, which jsonstrict.loads refuses too)."""
    value = LeadDecoder.fast(body)
    return jsonstrict.loads(body) if value is UNDECIDED else value


def _parse_request(body: bytes, service: PolicyService, active: Active,
                   max_batch: int) -> tuple[bool, list[Any], datetime, bool, Any]:
    """(single, leads, now, explain, mapping) from a request body, or _ApiError naming what is wrong."""
    try:
        doc = _loads_body(body)
    except ValueError as exc:
        raise _ApiError(400, "malformed-json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _ApiError(400, "invalid-body", 'body must be an object: {"lead": {...}} or {"leads": [...]}')
    unknown = sorted(set(doc) - {"lead", "leads", "now", "explain", "mapping"})
    if unknown:
        raise _ApiError(400, "invalid-body", f"unknown field(s): {', '.join(unknown)[:200]}", unknown[0][:200])
    mapping = _request_mapping(active, doc.get("mapping"))
    if ("lead" in doc) == ("leads" in doc):
        raise _ApiError(400, "invalid-body", 'give exactly one of "lead" (an object) or "leads" (an array)')
    explain = doc.get("explain", False)
    if not isinstance(explain, bool):
        raise _ApiError(400, "invalid-body", "'explain' must be true or false", "explain")
    now = parse_now(doc["now"]) if doc.get("now") is not None else service.now_provider()
    single = "lead" in doc
    if single:
        if not isinstance(doc["lead"], dict):
            raise _ApiError(400, "invalid-body", "'lead' must be a JSON object", "lead")
        return True, [doc["lead"]], now, explain, mapping
    leads = doc["leads"]
    if not isinstance(leads, list):
        raise _ApiError(400, "invalid-body", "'leads' must be an array of lead objects", "leads")
    if len(leads) > max_batch:
        raise _ApiError(413, "batch-too-large", f"{len(leads)} leads; the limit per request is {max_batch}")
    return False, leads, now, explain, mapping


def _request_mapping(active: Active, name: Any) -> Any:
    """The CRM mapping preset a request names ("mapping": "hubspot"), or None for native leads."""
    if name is None:
        return None
    from engine.crm.mapping import preset_for

    try:
        return preset_for(active.policy_set, name)
    except ValueError as exc:
        raise _ApiError(400, "unknown-mapping", str(exc), "mapping") from None


def decide_request(service: PolicyService, active: Active, body: bytes, job: Job, max_batch: int) -> tuple[int, bytes]:
    """All CPU work of one decision request (runs on the worker pool): parse, decide, render, then log."""
    if job.expired():
        raise DeadlineExceeded()
    return decide_parsed(service, active, _parse_request(body, service, active, max_batch), job)


def decide_parsed(service: PolicyService, active: Active, request: tuple[bool, list[Any], datetime, bool, Any],
                  job: Job) -> tuple[int, bytes]:
    """Decide, render, then log a parsed request (`_parse_request`); on the worker pool or, small, on the loop.

    The decision log is written only after the answer is rendered and the job committed, so every record
    belongs to an answer that is sent, and no answer is sent whose records could not be written.
    """
    if job.expired():
        raise DeadlineExceeded()
    single, leads, now, explain, mapping = request
    results = service.decide(active, leads, now, explain, mapping, job)
    meta = {"revision": active.revision, "sequence": active.sequence, "now": now.isoformat()}  # = evaluated_at
    status, content = _render_results(single, meta, results)
    lines = service.log_lines(active, leads, results, now) if service.decision_log is not None else b""
    if not job.commit():
        raise DeadlineExceeded()
    if service.decision_log is not None:
        service.decision_log.write_lines(lines)
    return status, content


def create_app(
    source: str | os.PathLike,
    trusted_keys: TrustedKeys,
    *,
    decision_log: str | os.PathLike | None = None,
    now_provider: Callable[[], datetime] | None = None,
    clock: Callable[[], datetime] | None = None,
    loader: Callable[[VerifiedBundle], Any] | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    max_body: int = DEFAULT_MAX_BODY,
    max_batch: int = DEFAULT_MAX_BATCH,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    scope: str | None = None,
    watch: bool = True,
    state_dir: str | os.PathLike | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
    max_pending: int = DEFAULT_MAX_PENDING,
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES,
    log_personal_data: bool = False,
) -> Starlette:
    """Build the service app for a bundle file or a watched directory of bundles.

    Never serves an unverified policy. When neither `source` nor the last good bundle of `state_dir` holds a
    valid bundle, the service still starts: `/healthz` and decisions answer 503 (naming why) until a valid
    bundle appears. `now_provider` gives the default `now` of a decision; `clock` the time bundles are verified
    against. `state_dir` (None: no persistence) keeps the trusted sequence and last good bundle across restarts.
    """
    service = PolicyService(
        source,
        trusted_keys,
        decision_log=decision_log,
        now_provider=now_provider,
        clock=clock,
        loader=loader,
        poll_interval=poll_interval,
        scope=scope,
        state_dir=state_dir,
        log_personal_data=log_personal_data,
    )
    metrics = service.metrics
    service.in_flight = lambda: {"requests": pending, "body_bytes": budget.used}
    pools: list[ThreadPoolExecutor] = []  # one per run of the app (made in the lifespan, shut down after it)
    budget = ByteBudget(max_inflight_bytes)
    pending = 0

    def current() -> Active:
        active = service.active
        if active is None:
            raise _ApiError(503, "no-policy", f"no verified bundle is loaded: {service.last_error or 'none yet'}")
        return active

    def expiry_headers(active: Active) -> dict[str, str]:
        if not active.verified.is_expired(service.clock()):
            return {}
        return {"Leadops-Warning": f"bundle {active.revision} expired at {_iso(active.verified.expires_datetime())}; "
                                   "serving the last good bundle"}

    async def get_bundle(request: Request) -> Response:
        active = current()
        headers = {"ETag": active.etag, "Cache-Control": "no-cache"}
        if etag_matches(request.headers.get("if-none-match"), active.etag):
            return Response(status_code=304, headers=headers)
        return Response(active.verified.raw, media_type="application/gzip", headers=headers)

    def shed(reason: str, code: str, message: str) -> _ApiError:
        metrics.rejected.labels(reason).inc()
        return _ApiError(503, code, message, headers={"Retry-After": "1"})

    async def post_decisions(request: Request) -> Response:
        nonlocal pending
        active = current()  # read once: this request is answered by exactly this policy
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _ApiError(415, "unsupported-media-type", "send the request body as application/json")
        if pending >= max_pending:
            raise shed("overloaded", "overloaded", f"{pending} decision requests in flight; retry in a second")
        pending += 1
        hold = BodyHold(budget)
        released = False
        try:
            body = await _read_body(request, max_body, body_timeout, hold)
            job = Job(time.monotonic() + request_timeout)
            if len(body) <= INLINE_MAX_BODY:  # parsed here: a single lead is decided here too
                parsed = _parse_request(body, service, active, max_batch)
                if parsed[0]:
                    status, content = decide_parsed(service, active, parsed, job)
                    return Response(content, status_code=status, media_type="application/json",
                                    headers=expiry_headers(active))
                work: tuple[Any, ...] = (decide_parsed, service, active, parsed, job)
            else:
                work = (decide_request, service, active, body, job, max_batch)
            future = asyncio.get_running_loop().run_in_executor(pools[-1], *work)
            future.add_done_callback(hold.release)  # the body is referenced until the worker is done with it
            released = True
            try:
                status, content = await asyncio.wait_for(asyncio.shield(future), request_timeout)
            except asyncio.TimeoutError:
                if job.cancel():
                    raise DeadlineExceeded() from None
                status, content = await future  # committed just in time: its records are logged, so answer it
        finally:
            pending -= 1
            if not released:
                hold.release()
        return Response(content, status_code=status, media_type="application/json", headers=expiry_headers(active))

    async def get_policy(request: Request) -> Response:
        active = current()
        info = active.verified.info()
        info.update(
            {
                "etag": active.etag,
                "loaded_at": _iso(active.loaded_at),
                "source": active.source,
                "expired": active.verified.is_expired(service.clock()),
                "last_error": service.last_error,
            }
        )
        return JSONResponse(info, headers=expiry_headers(active))

    async def healthz(request: Request) -> Response:
        status, body = service.health()
        return JSONResponse(body, status_code=status)

    async def get_metrics(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    openapi_doc = build_openapi()

    async def get_openapi(request: Request) -> Response:
        return JSONResponse(openapi_doc)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _ApiError)
        return _error(exc.status, exc.code, exc.message, exc.field, headers=exc.headers)

    async def deadline_error(request: Request, exc: Exception) -> Response:
        metrics.rejected.labels("deadline").inc()
        return _error(504, "deadline-exceeded", f"the decision did not finish within {request_timeout:g} s; "
                      "send smaller batches or retry")

    async def busy_error(request: Request, exc: Exception) -> Response:
        metrics.rejected.labels("busy").inc()
        return _error(503, "busy", f"too many request bytes in flight ({exc}); retry in a second",
                      headers={"Retry-After": "1"})

    async def log_error(request: Request, exc: Exception) -> Response:
        log.error("%s", exc)
        return _error(503, "decision-log-unavailable", "the decision log cannot be written, so no decision is "
                      "answered (see /healthz)", headers={"Retry-After": "5"})

    async def client_gone(request: Request, exc: Exception) -> Response:
        log.info("client hung up during %s %s", request.method, request.url.path)
        return Response(status_code=499)  # nginx's "client closed request": never sent, counted apart from errors

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return _error(exc.status_code, code, str(exc.detail), None, headers=dict(exc.headers or {}))

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal-error", "internal error (logged); this is a leadops bug")

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        pools.append(ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="leadops-decide"))
        task = asyncio.create_task(service.watch()) if watch else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
            pools.pop().shutdown(wait=False, cancel_futures=True)
            service.close()

    routes = [
        Route("/v1/bundle", get_bundle, methods=["GET"]),
        Route("/v1/decisions", post_decisions, methods=["POST"]),
        Route("/v1/policy", get_policy, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", get_metrics, methods=["GET"]),
        Route("/openapi.json", get_openapi, methods=["GET"]),
    ]
    from engine.web import routes as web_routes  # the read-only pages (/ui/): handbook, try a lead, impact

    routes += web_routes(service)
    handlers: dict[Any, Callable[[Request, Exception], Any]] = {
        _ApiError: api_error, DeadlineExceeded: deadline_error, BudgetExhausted: busy_error,
        AuditLogUnavailable: log_error, _ClientGone: client_gone, ClientDisconnect: client_gone,
        HTTPException: http_error, Exception: internal_error,
    }

    async def decisions_direct(scope: Any, receive: Any, send: Any) -> None:
        """POST /v1/decisions without Starlette's router and exception middleware (a measurable share of a
        single-lead request): the same endpoint, and its exceptions answered by the same handlers."""
        request = Request(scope, receive, send)
        try:
            response = await post_decisions(request)
        except Exception as exc:
            handler = next(handlers[k] for k in type(exc).__mro__ if k in handlers)
            response = await handler(request, exc)
        await response(scope, receive, send)

    app = Starlette(
        routes=routes,
        exception_handlers=handlers,
        middleware=[Middleware(_MetricsMiddleware, metrics=metrics, decisions=decisions_direct)],
        lifespan=lifespan,
    )
    app.state.service = service
    return app


_CACHED_METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"})


class _MetricsMiddleware:
    """Pure ASGI middleware: request count and latency per known path (unknown paths share one label); sends
    POST /v1/decisions straight to `decisions` when given."""

    def __init__(self, app: Any, metrics: _Metrics, decisions: Any = None):
        self.app = app
        self.metrics = metrics
        self.decisions = decisions  # an ASGI app for POST /v1/decisions (the hot path), else the app's router
        self._children: dict[tuple[str, ...], Any] = {}  # labelled series, looked up once (labels() is costly)

    def _child(self, metric: Any, key: tuple[str, ...]) -> Any:
        child = self._children.get((metric._name, *key))
        if child is None:
            child = metric.labels(*key)
            if key[0] in _CACHED_METHODS:  # a bounded set: the method is the client's word
                self._children[(metric._name, *key)] = child
        return child

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        label = path if path in KNOWN_PATHS else "other"
        method = scope.get("method", "")
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message):  # type: ignore[no-untyped-def]
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        app = self.decisions if self.decisions and method == "POST" and path == "/v1/decisions" else self.app
        try:
            await app(scope, receive, send_wrapper)
        finally:
            self._child(self.metrics.latency, (method, label)).observe(time.perf_counter() - start)
            self._child(self.metrics.requests, (method, label, str(status))).inc()


# ---------------------------------------------------------------------------------------------- OpenAPI


def _decision_schema() -> dict[str, Any]:
    path = Path(__file__).resolve().parent.parent / "schemas" / "decision.schema.json"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"type": "object", "description": "Decision.to_dict(): see schemas/decision.schema.json"}
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema


def build_openapi() -> dict[str, Any]:
    err = {"$ref": "#/components/schemas/Error"}

    def json_content(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {"application/json": {"schema": schema}}}

    def error_response(text: str) -> dict[str, Any]:
        return {"description": text, **json_content(err)}

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "leadops decision service",
            "version": "1",
            "description": "Lead scoring, lifecycle stage, routing and SLA decisions from a signed policy bundle.",
        },
        "paths": {
            "/v1/decisions": {
                "post": {
                    "operationId": "decide",
                    "summary": "Decide one lead or a batch of leads",
                    "requestBody": {"required": True, **json_content({"$ref": "#/components/schemas/DecisionRequest"})},
                    "responses": {
                        "200": {
                            "description": "Decisions (a batch answers 200 even when some leads are invalid)",
                            **json_content(
                                {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/DecisionResponse"},
                                        {"$ref": "#/components/schemas/BatchResponse"},
                                    ]
                                }
                            ),
                        },
                        "400": error_response("Malformed JSON or a body of the wrong shape"),
                        "408": error_response("The body was not received in time"),
                        "413": error_response("Body or batch over the limit"),
                        "415": error_response("Content-Type is not application/json"),
                        "422": error_response("The single lead is invalid, or 'now' is out of range; error.field names "
                                              "the failing field"),
                        "503": error_response("No verified bundle loaded, overloaded or too many bytes in flight "
                                              "(Retry-After), or the decision log cannot be written"),
                        "504": error_response("The decision did not finish within the request deadline"),
                    },
                }
            },
            "/v1/bundle": {
                "get": {
                    "operationId": "getBundle",
                    "summary": "The active signed bundle",
                    "parameters": [
                        {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "The bundle (.tar.gz with .manifest and .signatures.json)",
                            "headers": {"ETag": {"schema": {"type": "string"}}},
                            "content": {"application/gzip": {"schema": {"type": "string", "contentEncoding": "binary"}}},
                        },
                        "304": {"description": "Not modified"},
                        "503": error_response("No verified bundle loaded yet"),
                    },
                }
            },
            "/v1/policy": {
                "get": {
                    "operationId": "getPolicy",
                    "summary": "Revision, sequence, expiry and files of the active bundle",
                    "responses": {
                        "200": {"description": "Active policy", **json_content({"$ref": "#/components/schemas/Policy"})},
                        "503": error_response("No verified bundle loaded yet"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "responses": {
                        "200": {"description": "Serving (status ok or degraded)", **json_content({"type": "object"})},
                        "503": {"description": "No policy loaded", **json_content({"type": "object"})},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {}}}},
                }
            },
        },
        "components": {
            "schemas": {
                "Lead": {
                    "type": "object",
                    "description": "A lead record; see schemas/lead.schema.json of the policy set",
                    "required": ["id"],
                    "properties": {"id": {"type": "string"}},
                    "additionalProperties": True,
                },
                "DecisionRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "lead": {"$ref": "#/components/schemas/Lead"},
                        "leads": {
                            "type": "array",
                            "maxItems": DEFAULT_MAX_BATCH,
                            "items": {"$ref": "#/components/schemas/Lead"},
                        },
                        "now": {
                            "type": "string",
                            "format": "date-time",
                            "description": "Evaluation time (RFC 3339 with offset); default: request time in UTC",
                        },
                        "explain": {"type": "boolean", "default": False},
                        "mapping": {"type": "string", "description": "A mapping preset (hubspot, salesforce): "
                                    "each lead is a raw CRM record, mapped to a lead first"},
                    },
                    "oneOf": [{"required": ["lead"]}, {"required": ["leads"]}],
                },
                "Decision": _decision_schema(),
                "DecisionResponse": {
                    "type": "object",
                    "required": ["revision", "sequence", "now", "decision"],
                    "properties": {
                        "revision": {"type": "string"},
                        "sequence": {"type": "integer"},
                        "now": {"type": "string", "format": "date-time"},
                        "decision": {"$ref": "#/components/schemas/Decision"},
                    },
                },
                "BatchResponse": {
                    "type": "object",
                    "required": ["revision", "sequence", "now", "results", "summary"],
                    "properties": {
                        "revision": {"type": "string"},
                        "sequence": {"type": "integer"},
                        "now": {"type": "string", "format": "date-time"},
                        "results": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["index"],
                                "properties": {
                                    "index": {"type": "integer"},
                                    "lead_id": {"type": ["string", "null"]},
                                    "decision": {"$ref": "#/components/schemas/Decision"},
                                    "error": {"$ref": "#/components/schemas/ErrorDetail"},
                                },
                            },
                        },
                        "summary": {
                            "type": "object",
                            "properties": {
                                "leads": {"type": "integer"},
                                "decisions": {"type": "integer"},
                                "errors": {"type": "integer"},
                            },
                        },
                    },
                },
                "ErrorDetail": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string", "description": "The failing field (dotted path), when known"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}},
                },
                "Policy": {
                    "type": "object",
                    "properties": {
                        "revision": {"type": "string"},
                        "policy_version": {"type": "string"},
                        "sequence": {"type": "integer"},
                        "key_id": {"type": "string"},
                        "issued_at": {"type": ["string", "null"], "format": "date-time"},
                        "expires_at": {"type": "string", "format": "date-time"},
                        "expired": {"type": "boolean"},
                        "etag": {"type": "string"},
                        "files": {"type": "array", "items": {"type": "string"}},
                        "bundle_sha256": {"type": "string"},
                    },
                },
            }
        },
    }


# ---------------------------------------------------------------------------------------------- running


def reopen_log_on_sighup(app: Any) -> None:
    """SIGHUP reopens the decision log (logrotate's convention) instead of ending the process (main thread only)."""
    service: PolicyService = app.state.service

    def on_hup(signum: int, frame: Any) -> None:
        if service.decision_log is not None:
            service.decision_log.request_reopen()
        log.info("SIGHUP: the decision log is reopened before its next record")

    signal.signal(signal.SIGHUP, on_hup)


def run(app: Any, host: str = "127.0.0.1", port: int = 8181, *, log_level: str = "info",
        limits: ConnectionLimits | None = None, diagnostic_port: int | None = None, processes: int = 1,
        process_logs: list[DecisionLog] | None = None) -> None:
    """Serve `app` with uvicorn, within `limits` (engine/connections.py), until SIGINT or SIGTERM.

    `diagnostic_port`: also serve /healthz and /metrics there, on their own thread (engine/diagnostics.py).
    The interpreter's thread switch interval is lowered to 1 ms so that the event loop and the diagnostic
    thread get the interpreter lock back quickly from decision workers (measured: benchmarks/service_health.py).
    `processes` > 1: that many server processes (`run_processes`; `process_logs`: the decision logs of
    processes 1.., opened before forking; process 0 keeps the app's).
    """
    gc.collect()
    gc.freeze()  # the loaded policy and libraries are permanent: full collections no longer walk them (tail latency)
    if processes > 1:
        sys.exit(run_processes(app, host, port, processes, log_level=log_level, limits=limits,
                               diagnostic_port=diagnostic_port, process_logs=process_logs))
    _serve(app, _listening_socket(host, port), log_level, limits, diagnostic_port)


def _listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto set: asyncio enables TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _serve(app: Any, sock: socket.socket, log_level: str, limits: ConnectionLimits | None,
           diagnostic_port: int | None) -> None:
    """One server process: uvicorn on `sock` (bound, not yet listening) until SIGINT or SIGTERM."""
    import uvicorn

    from engine.diagnostics import DiagnosticServer

    sys.setswitchinterval(SWITCH_INTERVAL)
    reopen_log_on_sighup(app)
    host = sock.getsockname()[0]
    diagnostics = DiagnosticServer(app.state.service, host, diagnostic_port).start() if diagnostic_port else None
    try:
        config = uvicorn.Config(app, log_level=log_level, **uvicorn_options(limits or ConnectionLimits()))
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if diagnostics is not None:
            diagnostics.stop()


def _die_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM when its parent dies (a kill -9 of `leadops serve` must not
    leave server processes holding the port); Linux only, elsewhere a no-op."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def run_processes(app: Any, host: str, port: int, processes: int, *, log_level: str = "info",
                  limits: ConnectionLimits | None = None, diagnostic_port: int | None = None,
                  process_logs: list[DecisionLog] | None = None) -> int:
    """Serve `app` from `processes` forked processes, each with its own event loop and SO_REUSEPORT listening
    socket on (host, port): the kernel spreads connections over them, so decisions use every core (one
    process's Python work runs on one core at a time). Returns the exit status when they have stopped.

    Forked after loading, so each starts with the verified policy, then watches the bundle and persists trust
    state on its own (TrustState.save is locked: the sequence never goes down). Each process writes its own
    decision log: process 0 the app's, process i `process_logs[i - 1]` (auditlog.process_log_path says why).
    SIGTERM, SIGINT and SIGHUP are passed on
    to every process. /metrics and /healthz describe the process that answers (the diagnostic port: the
    first). When one process exits, the others are stopped: restarting is the supervisor's job (systemd), and a
    process forked again from this one's start-up state could briefly serve an older policy than its siblings.
    """
    reserved = _listening_socket(host, port, reuse_port=True)  # port 0: one port for all; never listens here
    port = reserved.getsockname()[1]
    children: dict[int, int] = {}
    parent = os.getpid()
    for index in range(processes):
        pid = os.fork()
        if pid == 0:  # the child: serve, then leave without running the parent's cleanup
            status = 1
            try:
                _die_with_parent(parent)
                reserved.close()
                service: PolicyService = app.state.service
                logs = [service.decision_log, *(process_logs or [])]
                if service.decision_log is not None:
                    service.decision_log = logs[index]
                for other in logs:
                    if other is not None and other is not service.decision_log:
                        other.close()
                _serve(app, _listening_socket(host, port, reuse_port=True), log_level, limits,
                       diagnostic_port if index == 0 else None)
                status = 0
            except BaseException:
                log.exception("server process %d failed", index)
            finally:
                os._exit(status)
        children[pid] = index
    log.info("serving from %d processes on port %d: %s", processes, port, ", ".join(map(str, children)))
    stopping = False

    def forward(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = stopping or signum != signal.SIGHUP
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        children.pop(pid, None)
        exit_code = os.waitstatus_to_exitcode(code)
        if not stopping:
            log.error("server process %d exited (%d); stopping the others", pid, exit_code)
            status = 1
            forward(signal.SIGTERM, None)
    reserved.close()
    return status


class BackgroundServer:
    """A real uvicorn server on a loopback ephemeral port, in a thread (tests, benchmarks, embedding).

    with BackgroundServer(app) as srv: httpx.get(srv.url + "/healthz")
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning",
                 limits: ConnectionLimits | None = None, fast: bool = True):
        import uvicorn

        self.sock = _listening_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        options = uvicorn_options(limits or ConnectionLimits(), fast=fast)  # fast=False: the h11/asyncio fallback
        config = uvicorn.Config(app, log_level=log_level, lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
