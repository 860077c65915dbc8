"""Strict JSON: the one parser for JSON that comes from outside (bundles, signatures, request bodies, leads).

    from engine.jsonstrict import loads, Decoder, StrictJSONError
    value = loads(data)                     # bytes or str; raises ValueError (StrictJSONError or JSONDecodeError)
    decode = Decoder(nonfinite=True).decode # one reusable decoder (not thread-safe), e.g. per batch worker

Rejected, so that no two parsers can read the same bytes differently:

* a key repeated in one object (parsers disagree on which value wins): `StrictJSONError` with ``kind ==
  "duplicate-key"``, ``key`` the repeated key and ``path`` its dotted path (``company.name``,
  ``activities[2].at``) — the first such object depth first, in document order;
* ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON): ``kind == "constant"``. A lead decoder passes
  ``nonfinite=True`` and leaves them to the lead schema, which names the field;
* text that is not UTF-8: undecodable bytes, or a lone surrogate (raw, from a ``surrogateescape`` read, or
  written as an escape such as ``"\\ud800"``): ``kind == "utf-8"``;
* nesting deeper than the decoder's recursion limit: ``kind == "depth"`` (the message is Python's).

Malformed syntax raises `json.JSONDecodeError`; every error is a `ValueError`.
"""

from __future__ import annotations

import gc
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

NOT_UTF8 = "not valid UTF-8 text (undecodable bytes or a lone surrogate escape)"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


# From this many characters a document is parsed with the cyclic garbage collector paused: the collector's
# passes over the containers a big document creates made parse time grow faster than its size (4 MB of nested
# arrays: 1.0 s with it, 0.19 s without). A parse creates no cycles, so pausing it frees nothing late.
GC_PAUSE_MIN_LENGTH = 65_536
_gc_lock = threading.Lock()
_gc_pausers = 0


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while any thread is inside; restore it (if it was on) when the last one leaves."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


_gc_was_enabled = True


class StrictJSONError(ValueError):
    """Valid JSON syntax that strict JSON still refuses (see the module docstring for `kind`)."""

    def __init__(self, message: str, kind: str, path: str = "", key: str = ""):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.path = path
        self.key = key


def reject_constant(name: str) -> Any:
    """`parse_constant` hook: NaN and ±Infinity are not JSON."""
    raise StrictJSONError(f"{name} is not valid JSON", "constant")


class _Repeated(dict):
    repeated = ""


class Decoder:
    """A reusable strict decoder. Holds per-document state: use one per thread (or process)."""

    def __init__(self, *, nonfinite: bool = False):
        self._repeated: list[_Repeated] = []  # objects of the current document that repeat a key
        kwargs: dict[str, Any] = {} if nonfinite else {"parse_constant": reject_constant}
        self._decode = json.JSONDecoder(object_pairs_hook=self._object, **kwargs).decode

    def decode(self, data: bytes | bytearray | str) -> Any:
        if isinstance(data, (bytes, bytearray)):
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise StrictJSONError(f"{NOT_UTF8}: {exc}", "utf-8") from None
        else:
            text = data
        self._repeated.clear()
        try:
            if len(text) < GC_PAUSE_MIN_LENGTH:
                value = self._decode(text)
            else:
                with _gc_paused():
                    value = self._decode(text)
        except RecursionError as exc:
            raise StrictJSONError(str(exc), "depth") from None
        if self._repeated:
            raise _duplicate_error(value, self._repeated)
        try:
            if not text.isascii():
                text.encode("utf-8")  # raw lone surrogates (undecodable bytes read with surrogateescape)
            if "\\u" in text and _SURROGATE_ESCAPE.search(text):
                json.dumps(value, ensure_ascii=False).encode("utf-8")  # escaped ones: "\\ud800"
        except UnicodeEncodeError:
            raise StrictJSONError(NOT_UTF8, "utf-8") from None
        return value

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        """JSON objects as dicts, noting those that repeat a key."""
        obj = dict(pairs)
        if len(obj) != len(pairs):
            obj = _Repeated(obj)
            obj.repeated = _first_repeated(pairs)
            self._repeated.append(obj)
        return obj


def _first_repeated(pairs: list[tuple[str, Any]]) -> str:
    """The first key (in document order) that repeats an earlier one: one pass with a set, linear in size."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


def _duplicate_error(value: Any, repeated: list[_Repeated]) -> StrictJSONError:
    """The error naming the first object (depth first, in document order) that repeats a key."""
    repeated.clear()

    def find(item: Any, path: str) -> tuple[str, str] | None:
        if isinstance(item, _Repeated):
            return (path + "." if path else "") + item.repeated, item.repeated
        if isinstance(item, dict):
            for key, sub in item.items():
                hit = find(sub, (path + "." if path else "") + str(key))
                if hit is not None:
                    return hit
        elif isinstance(item, list):
            for position, sub in enumerate(item):
                hit = find(sub, f"{path}[{position}]")
                if hit is not None:
                    return hit
        return None

    path, key = find(value, "") or ("", "")
    return StrictJSONError(f"the key '{key}' appears more than once", "duplicate-key", path, key)


def loads(data: bytes | bytearray | str, *, nonfinite: bool = False) -> Any:
    """Parse one strict JSON document (thread-safe: a fresh decoder per call)."""
    return Decoder(nonfinite=nonfinite).decode(data)


__all__ = ["Decoder", "NOT_UTF8", "StrictJSONError", "loads", "reject_constant"]
