"""A real `leadops serve` process on loopback for end-to-end tests (kill -9, SIGHUP, slowloris, full disk)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LEADOPS = Path(sys.executable).with_name("leadops")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`leadops serve ARGS --port <free>` in its own process; `url`, `kill9()`, `stop()`, `stderr_text()`."""

    def __init__(self, args: list[str], workdir: Path, *, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.err_path = workdir / f"serve-{self.port}.stderr"
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(
            [str(LEADOPS), "serve", *args, "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=self._err, env={**os.environ, **(env or {})},
        )
        self._wait_up()

    def _wait_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"leadops serve exited {self.proc.returncode}: {self.stderr_text()}")
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"leadops serve did not answer: {self.stderr_text()}")

    def stderr_text(self) -> str:
        self._err.flush()
        return self.err_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._err.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._err.close()

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
