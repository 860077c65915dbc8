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

Bad requests get a 4xx JSON error ``{"error": {"code", "message", "field"?}}``: wrong content type (415), body over
the limit (413), slow body (408), malformed JSON or wrong shape (400), an invalid single lead (422, naming the
field). In a batch, each invalid lead gets its own error entry and the others are decided.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.bundle import BundleError, canonical_json
from engine import jsonstrict
from engine.errors import LeadError, LeadopsError, PolicyError
from engine.policyset import parse_instant
from engine.signing import TrustedKeys, VerifiedBundle, load_trusted_keys, verify_bundle

log = logging.getLogger("leadops.server")

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_BATCH = 1000
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_POLL_INTERVAL = 1.0
KNOWN_PATHS = ("/v1/bundle", "/v1/decisions", "/v1/policy", "/healthz", "/metrics", "/openapi.json")


@dataclass(frozen=True)
class Active:
    """One fully loaded policy: published by a single reference assignment, never mutated."""

    verified: VerifiedBundle
    policy_set: Any
    etag: str
    loaded_at: datetime
    source: str

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


class DecisionLog:
    """Append-only JSON Lines audit log; one line per lead, written whole under a lock."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")
        self._lock = threading.Lock()

    def write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        data = b"".join(canonical_json(rec) + b"\n" for rec in records)
        with self._lock:
            self._fh.write(data)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def input_hash(lead: Any) -> str:
    try:
        return "sha256:" + hashlib.sha256(canonical_json(lead)).hexdigest()
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
    """The service state: the active policy, the watcher, metrics and the decision log."""

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
    ):
        self.source = Path(source)
        self.watch_dir = self.source.is_dir()
        if not self.watch_dir and not self.source.is_file():
            raise BundleError("missing-bundle", f"no bundle file or directory at {self.source}")
        self.keys = load_trusted_keys(trusted_keys)
        self.now_provider = now_provider or (lambda: datetime.now(timezone.utc))
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.loader = loader or (lambda verified: verified.load_policy_set())
        self.poll_interval = poll_interval
        self.scope = scope
        self.metrics = _Metrics()
        self.decision_log = DecisionLog(decision_log) if decision_log else None
        self.active: Active | None = None
        self.errors: dict[str, str] = {}  # bundle path -> why it was rejected (while it stays as it is)
        self.last_error_at: datetime | None = None
        self._seen: dict[Path, tuple[int, int, int]] = {}
        self._reload_lock = threading.Lock()
        self.reload()
        if self.active is None and not self.watch_dir:
            raise BundleError("no-valid-bundle", self.last_error or f"{self.source} is not a valid bundle")

    @property
    def last_error(self) -> str | None:
        return "; ".join(self.errors.values()) if self.errors else None

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
                try:
                    verified = verify_bundle(
                        data,
                        self.keys,
                        now=self.clock(),
                        min_sequence=current.sequence if current else None,
                        current_revision=current.revision if current else None,
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
                self._publish(verified, policy_set, path)
                return True
            return False

    def _publish(self, verified: VerifiedBundle, policy_set: Any, path: Path) -> None:
        new = Active(verified, policy_set, make_etag(verified), self.clock(), str(path))
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

    # ------------------------------------------------------------------ decisions

    def decide(self, active: Active, leads: list[Any], now: datetime, explain: bool,
               mapping: Any = None) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        log_records: list[dict[str, Any]] = []
        stamp = _iso(self.clock())
        for index, lead in enumerate(leads):
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
                    self.metrics.decisions.labels(
                        _label(decision, "stage", ("to", "id")), _label(decision, "route", ("queue", "team", "rule"))
                    ).inc()
            results.append(entry)
            if self.decision_log is not None:
                record = {
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
                    record["error"] = entry["error"]
                log_records.append(record)
        if self.decision_log is not None:
            self.decision_log.write(log_records)
        return results

    def close(self) -> None:
        if self.decision_log is not None:
            self.decision_log.close()


# ---------------------------------------------------------------------------------------------- HTTP


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        self.status, self.code, self.message, self.field = status, code, message, field


def _error(status: int, code: str, message: str, field: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if field is not None:
        body["error"]["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status)


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise _ApiError(400, "bad-request", "Content-Length is not a number")
        if int(length) > limit:
            raise _ApiError(413, "body-too-large", f"request body is {int(length)} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0

    async def collect() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _ApiError(413, "body-too-large", f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(collect(), timeout)
    except asyncio.TimeoutError:
        raise _ApiError(408, "request-timeout", f"request body not received within {timeout:g} s") from None
    return b"".join(chunks)


def parse_now(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise _ApiError(400, "invalid-now", "'now' must be an RFC 3339 date-time string with an offset", "now")
    try:
        return parse_instant(value)
    except ValueError as exc:
        if str(exc) == "no UTC offset":
            raise _ApiError(400, "invalid-now", "'now' needs a UTC offset (e.g. 2025-03-04T09:00:00Z)", "now") from None
        raise _ApiError(400, "invalid-now", f"'now' is not an RFC 3339 date-time: {value!r}", "now") from None


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
) -> Starlette:
    """Build the service app for a bundle file or a watched directory of bundles.

    Raises BundleError when `source` is a file that is not a valid signed bundle (the service never starts
    on an unverified policy). A watched directory may start empty: decisions answer 503 until a bundle arrives.
    `now_provider` gives the default `now` of a decision; `clock` the time bundles are verified against.
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
    )
    metrics = service.metrics

    def current() -> Active:
        active = service.active
        if active is None:
            raise _ApiError(503, "no-policy", "no verified bundle is loaded yet")
        return active

    async def get_bundle(request: Request) -> Response:
        active = current()
        headers = {"ETag": active.etag, "Cache-Control": "no-cache"}
        if etag_matches(request.headers.get("if-none-match"), active.etag):
            return Response(status_code=304, headers=headers)
        return Response(active.verified.raw, media_type="application/gzip", headers=headers)

    async def post_decisions(request: Request) -> Response:
        active = current()  # read once: this request is answered by exactly this policy
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _ApiError(415, "unsupported-media-type", "send the request body as application/json")
        body = await _read_body(request, max_body, body_timeout)
        try:
            doc = jsonstrict.loads(body)
        except ValueError as exc:
            raise _ApiError(400, "malformed-json", f"request body is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise _ApiError(400, "invalid-body", 'body must be an object: {"lead": {...}} or {"leads": [...]}')
        unknown = sorted(set(doc) - {"lead", "leads", "now", "explain", "mapping"})
        if unknown:
            raise _ApiError(400, "invalid-body", f"unknown field(s): {', '.join(unknown)}", unknown[0])
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
            leads = [doc["lead"]]
        else:
            leads = doc["leads"]
            if not isinstance(leads, list):
                raise _ApiError(400, "invalid-body", "'leads' must be an array of lead objects", "leads")
            if len(leads) > max_batch:
                raise _ApiError(413, "batch-too-large", f"{len(leads)} leads; the limit per request is {max_batch}")
        mapping = None
        if doc.get("mapping") is not None:  # "mapping": a preset name; each lead is a raw CRM record (engine/crm)
            from engine.crm.mapping import preset_for

            try:
                mapping = preset_for(active.policy_set, doc["mapping"])
            except ValueError as exc:
                raise _ApiError(400, "unknown-mapping", str(exc), "mapping") from None
        results = service.decide(active, leads, now, explain, mapping)
        meta = {"revision": active.revision, "sequence": active.sequence, "now": now.isoformat()}  # = evaluated_at
        if single:
            entry = results[0]
            if "error" in entry:
                return JSONResponse({"error": entry["error"], **meta}, status_code=422)
            return JSONResponse({**meta, "decision": entry["decision"]})
        errors = sum(1 for e in results if "error" in e)
        summary = {"leads": len(results), "decisions": len(results) - errors, "errors": errors}
        return JSONResponse({**meta, "results": results, "summary": summary})

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
        return JSONResponse(info)

    async def healthz(request: Request) -> Response:
        active = service.active
        if active is None:
            return JSONResponse(
                {"status": "unavailable", "reason": service.last_error or "no verified bundle loaded"}, status_code=503
            )
        problems = []
        if active.verified.is_expired(service.clock()):
            problems.append("active bundle has expired; publish a freshly signed bundle")
        problems.extend(f"bundle rejected (still serving the last good one): {msg}" for msg in service.errors.values())
        body = {
            "status": "degraded" if problems else "ok",
            "revision": active.revision,
            "sequence": active.sequence,
            "problems": problems,
        }
        return JSONResponse(body)

    async def get_metrics(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    openapi_doc = build_openapi()

    async def get_openapi(request: Request) -> Response:
        return JSONResponse(openapi_doc)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _ApiError)
        return _error(exc.status, exc.code, exc.message, exc.field)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return _error(exc.status_code, code, str(exc.detail), None)

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal-error", "internal error (logged); this is a leadops bug")

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
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
    app = Starlette(
        routes=routes,
        exception_handlers={_ApiError: api_error, HTTPException: http_error, Exception: internal_error},
        middleware=[Middleware(_MetricsMiddleware, metrics=metrics)],
        lifespan=lifespan,
    )
    app.state.service = service
    return app


class _MetricsMiddleware:
    """Pure ASGI middleware: request count and latency per known path (unknown paths share one label)."""

    def __init__(self, app: Any, metrics: _Metrics):
        self.app = app
        self.metrics = metrics

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

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.latency.labels(method, label).observe(time.perf_counter() - start)
            self.metrics.requests.labels(method, label, str(status)).inc()


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
                        "422": error_response("The single lead is invalid; error.field names the failing field"),
                        "503": error_response("No verified bundle loaded yet"),
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


def run(app: Any, host: str = "127.0.0.1", port: int = 8181, *, log_level: str = "info") -> None:
    """Serve `app` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False)


class BackgroundServer:
    """A real uvicorn server on a loopback ephemeral port, in a thread (tests, benchmarks, embedding).

    with BackgroundServer(app) as srv: httpx.get(srv.url + "/healthz")
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning"):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # proto set: asyncio enables TCP_NODELAY
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level=log_level, access_log=False, server_header=False, lifespan="on")
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
