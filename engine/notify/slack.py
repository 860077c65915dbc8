"""Posting to a Slack incoming webhook the way Slack asks: at most about one message per second per webhook,
429 answered by waiting the `Retry-After` seconds, 5xx and network errors retried with exponential backoff,
every retry bounded. Any other answer (400 invalid_payload, 403, 404 no_service) is final: retrying cannot help.

The webhook URL is a secret: it comes from the environment or a file outside the policy repository and is never
printed (messages name the host only).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from engine.errors import LeadopsError

ENV_VAR = "LEADOPS_SLACK_WEBHOOK_URL"
MAX_RETRY_AFTER = 60.0
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
CHANNEL = re.compile(r"#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{8,12}")  # as teams.schema.json's slack_channel


class WebhookError(LeadopsError):
    """No usable webhook URL."""


def webhook_url(file: str | None = None, policy_dir: str | None = None) -> str:
    """The one (default) webhook URL of `webhook_urls`."""
    urls = webhook_urls(file, policy_dir)
    if None not in urls:
        raise WebhookError(f"{file}: no default webhook (a line with a URL alone)")
    return urls[None]


def webhook_urls(file: str | None = None, policy_dir: str | None = None) -> dict[str | None, str]:
    """Webhook URLs by channel (None: the default) from `file` or the LEADOPS_SLACK_WEBHOOK_URL environment
    variable (one default URL). A file holds a URL alone (the default) and/or `CHANNEL URL` lines (a Slack app's
    webhook posts only to its own channel: one per team channel); blank lines and lines starting with "# " are
    comments. Refuses a file inside the policy directory (it would be committed with the policies) and any URL
    that is not https (http only on loopback, for tests)."""
    if file:
        path = Path(file).resolve()
        if policy_dir and path.is_relative_to(Path(policy_dir.split(":")[-1]).resolve()):
            raise WebhookError(f"{file}: the webhook URL is a secret and must not live in the policy directory; "
                               f"keep it outside the repository or set {ENV_VAR}")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise WebhookError(f"{file}: cannot read the webhook file: {exc.strerror}") from None
        urls: dict[str | None, str] = {}
        for number, line in enumerate(lines, 1):
            words = line.split()
            if not words or words[0] == "#":
                continue
            if len(words) > 2 or (len(words) == 2 and not CHANNEL.fullmatch(words[0])):
                raise WebhookError(f"{file}:{number}: expected a URL, or a channel (#name or C…) and a URL")
            channel, url = (None, words[0]) if len(words) == 1 else (words[0], words[1])
            urls[channel] = _checked(url, f"{file}:{number}")
    else:
        text = os.environ.get(ENV_VAR, "").strip()
        urls = {None: _checked(text, ENV_VAR)} if text else {}
    if not urls:
        raise WebhookError(f"no Slack webhook URL: set {ENV_VAR} or pass --webhook-file FILE (or use --dry-run)")
    return urls


def _checked(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.hostname and (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)):
        return url
    raise WebhookError(f"{where}: not a webhook URL (expected https://hooks.slack.com/services/…)")


@dataclass
class Delivery:
    """How one post ended: delivered or not, after how many attempts, and Slack's last answer."""

    ok: bool
    attempts: int
    status: int | None
    detail: str = ""


class Webhook:
    """One incoming webhook with its own pace. `sleep` and `clock` are injectable for tests of the pacing."""

    def __init__(self, url: str, *, interval: float = 1.0, max_attempts: int = 5, backoff: float = 1.0,
                 timeout: float = 10.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.host = urlsplit(url).netloc
        self.interval = interval
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep
        self.clock = clock
        self.waited = 0.0
        self._last: float | None = None
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Webhook":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _pace(self) -> None:
        if self._last is not None:
            wait = self.interval - (self.clock() - self._last)
            if wait > 0:
                self._wait(wait)
        self._last = self.clock()

    def _wait(self, seconds: float) -> None:
        self.waited += seconds
        self.sleep(seconds)

    def post(self, payload: dict[str, Any]) -> Delivery:
        """Post one message, retrying 429 (after Retry-After) and 5xx/network errors (backoff), bounded."""
        status: int | None = None
        detail = ""
        for attempt in range(1, self.max_attempts + 1):
            self._pace()
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.HTTPError as exc:
                status, detail = None, f"{type(exc).__name__} talking to {self.host}"
                delay = self.backoff * 2 ** (attempt - 1)
            else:
                status, detail = response.status_code, response.text[:200]
                if 200 <= status < 300:
                    return Delivery(True, attempt, status, detail)
                if status == 429:
                    delay = retry_after(response.headers.get("Retry-After"), self.backoff)
                elif status >= 500:
                    delay = self.backoff * 2 ** (attempt - 1)
                else:
                    return Delivery(False, attempt, status, f"{self.host} answered {status} {detail}".strip())
            if attempt < self.max_attempts:
                self._wait(delay)
        shown = f"{status} {detail}".strip() if status is not None else detail
        return Delivery(False, self.max_attempts, status, f"gave up after {self.max_attempts} attempts: {shown}")


class Webhooks:
    """The webhook of each channel (else the default), each with its own pace: Slack limits each webhook."""

    def __init__(self, urls: dict[str | None, str], **options: Any):
        self.hooks = {channel: Webhook(url, **options) for channel, url in urls.items()}

    def post(self, payload: dict[str, Any]) -> Delivery:
        hook = self.hooks.get(payload.get("channel")) or self.hooks.get(None)
        if hook is None:
            return Delivery(False, 0, None, f"no webhook for channel {payload.get('channel')} and no default")
        return hook.post(payload)

    @property
    def waited(self) -> float:
        return sum(h.waited for h in self.hooks.values())

    def close(self) -> None:
        for hook in self.hooks.values():
            hook.close()

    def __enter__(self) -> "Webhooks":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds), bounded by MAX_RETRY_AFTER."""
    try:
        seconds = float(value) if value is not None else default
    except ValueError:
        seconds = default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
