"""Personal data in logs: which lead fields hold it (from the lead schema) and masking their values.

A field holds personal data when its schema says ``"x-leadops-pii": true`` or ``"format": "email"``. Masking is
by value: every value found at such a path in the lead is replaced wherever it appears in a log record
(explain traces quote values in free text), and an error about such a field loses its quoted value (error
messages quote a truncated copy of the bad value). Logs keep the lead's id and an input hash, so a record can
still be matched to the CRM without copying names, emails or phone numbers into the audit trail.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import orjson

PII_KEYWORD = "x-leadops-pii"
MASK = "[personal data]"
MIN_SUBSTRING = 4  # shorter values are masked only where they are a whole string (never inside other text)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")

Path = tuple[str, ...]  # property names; "*" stands for every item of an array


def personal_paths(schema: Any, prefix: Path = (), depth: int = 0) -> list[Path]:
    """Every path of the lead schema marked as personal data (`x-leadops-pii: true` or `format: email`)."""
    if not isinstance(schema, dict) or depth > 32:
        return []
    found: list[Path] = []
    if prefix and (schema.get(PII_KEYWORD) is True or schema.get("format") == "email"):
        found.append(prefix)
    props = schema.get("properties")
    if isinstance(props, dict):
        for name, sub in props.items():
            found.extend(personal_paths(sub, prefix + (str(name),), depth + 1))
    if isinstance(schema.get("items"), dict):
        found.extend(personal_paths(schema["items"], prefix + ("*",), depth + 1))
    return found


def _values_at(value: Any, path: Path) -> list[Any]:
    if not path:
        return [value]
    head, rest = path[0], path[1:]
    if head == "*":
        return [v for item in value for v in _values_at(item, rest)] if isinstance(value, list) else []
    if isinstance(value, dict) and head in value:
        return _values_at(value[head], rest)
    return []


def _dotted(path: Path) -> re.Pattern[str]:
    parts = [r"\[\d+\]" if p == "*" else re.escape(p) for p in path]
    text = "".join(p if p.startswith(r"\[") else ("." + p if i else p) for i, p in enumerate(parts))
    return re.compile(f"^{text}$")


class Masker:
    """Masks the personal values of one lead schema; `for_lead` gives a function over log records."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self._field_patterns = [_dotted(p) for p in paths]

    @classmethod
    def from_schema(cls, schema: Any) -> "Masker":
        return cls(personal_paths(schema))

    def is_personal_field(self, field: str | None) -> bool:
        return bool(field) and any(p.match(field) for p in self._field_patterns)

    def personal_strings(self, lead: Any) -> set[str]:
        """The lead's personal values as the text masking looks for (empty strings left out)."""
        strings: set[str] = set()
        for path in self.paths:
            for value in _values_at(lead, path):
                if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    strings.add(str(value))
        return {s for s in strings if s}

    def may_touch(self, lead: Any, encoded: bytes) -> bool:
        """Whether masking could change a record whose JSON (UTF-8, not ASCII-escaped) is `encoded`.

        False only when no personal value of `lead` occurs in it, even inside a string, and nothing is an error
        about a field (whose message loses its quoted value): then the masked copy equals the record, and the
        walk over it (a large share of a logged decision's cost) is skipped. JSON escapes a string character
        by character, so a value inside a string is inside its encoding."""
        if not self.paths:
            return False
        if b'"field":' in encoded:
            return True
        for text in self.personal_strings(lead):
            try:
                needle = orjson.dumps(text)[1:-1]
            except TypeError:  # a lone surrogate: look no further
                return True
            if needle in encoded:
                return True
        return False

    def for_lead(self, lead: Any) -> Callable[[Any], Any]:
        """A function that returns a masked copy of a log record (decision, trace or error) about `lead`."""
        if not self.paths:
            return lambda value: value
        whole = self.personal_strings(lead)
        inside = sorted((s for s in whole if len(s) >= MIN_SUBSTRING), key=len, reverse=True)

        def mask_text(text: str) -> str:
            if text in whole:
                return MASK
            for s in inside:
                if s in text:
                    text = text.replace(s, MASK)
            return text

        def mask(value: Any) -> Any:
            if isinstance(value, str):
                return mask_text(value) if whole else value
            if isinstance(value, dict):
                out = {k: mask(v) for k, v in value.items()}
                if self.is_personal_field(value.get("field")) and isinstance(out.get("message"), str):
                    out["message"] = _QUOTED.sub(repr(MASK), out["message"], count=1)
                return out
            if isinstance(value, list):
                return [mask(v) for v in value]
            return value

        return mask
