"""A diagnostic listener: /healthz and /metrics on their own port and thread (OPA's ``--diagnostic-addr``).

Why: every request on the main port, even a shed one, costs the event loop some pure-Python HTTP work, so at
hundreds of concurrent connections a probe on the main port waits behind them. This listener has its own
socket and thread and does no decision work, so it only needs the interpreter lock for a few short turns:
its probes keep answering (measured by benchmarks/service_health.py) while the main port is saturated.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class DiagnosticServer:
    """Serve `service.health()` at /healthz and its metrics at /metrics on (host, port); port 0 picks one."""

    def __init__(self, service: Any, host: str = "127.0.0.1", port: int = 0):
        self.service = service
        handler = type("DiagnosticHandler", (_Handler,), {"service": service})
        self.httpd = _BoundedServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.httpd.timeout = 5
        self.host, self.port = self.httpd.server_address[:2]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="leadops-diagnostics", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "DiagnosticServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _BoundedServer(ThreadingHTTPServer):
    """At most MAX_THREADS probes at a time; more connections are closed at once (probes retry)."""

    MAX_THREADS = 16

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._slots = threading.BoundedSemaphore(self.MAX_THREADS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Handler(BaseHTTPRequestHandler):
    service: Any
    timeout = 5  # a slow probe client cannot hold a handler thread
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/healthz":
            status, body = self.service.health()
            self._send(status, "application/json", json.dumps(body).encode())
        elif self.path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest(self.service.metrics.registry))
        else:
            self._send(404, "application/json", b'{"error":{"code":"not-found","message":"only /healthz and /metrics"}}')

    def _send(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # probes are not worth a log line each
        pass
