"""orjson fast paths for the batch: lead parsing held to engine/jsonstrict.py, output held to render.to_json.

    from engine.fastjson import LeadDecoder, compact_bytes
    decode = LeadDecoder().decode   # one per worker (not thread-safe); same values and errors as jsonstrict
    line = compact_bytes(decision)  # == render.to_json(decision, pretty=False).encode(), byte for byte

Parsing. orjson is ~3x faster than the stdlib parser, but it reads some documents differently from the strict
parser (`jsonstrict.Decoder(nonfinite=True)`), which stays the one definition of what a lead's JSON means:

* a repeated key: orjson keeps the last value silently. Detected by counting colons: the text has one per
  key plus those inside strings; orjson's compact re-serialisation of the parsed value has one per key that
  survived plus those inside the strings that survived (string contents are written back as read, except
  escapes: ``\\u003a`` becomes a colon, so a text with that escape goes to the strict parser). Equal counts =
  nothing was dropped = no repeated key;
* integers beyond 64 bits: orjson makes them floats, the stdlib keeps an int. A run of 19 digits anywhere
  (also inside strings: harmless) sends the line to the strict parser;
* nesting: orjson allows 1,024 levels, the stdlib as many as the recursion limit leaves. More than 255
  brackets in a line send it to the strict parser (which raises its "depth" error where it does today);
* everything orjson refuses (NaN/Infinity, which the lead schema names, malformed syntax, bad UTF-8, lone
  surrogate escapes, a BOM, numbers out of range) goes to the strict parser, so errors and messages are
  exactly today's.

`tests/test_fastjson.py` holds the fast path to the strict parser on generated and hostile documents.

Output. orjson writes the same bytes as the stdlib encoder with ``ensure_ascii=False, separators=(",", ":")``
for dicts, lists, str, int (64-bit), bool and None; floats differ only for 1e-9 <= |x| < 1e-4 ("1e-9" vs
"1e-09", "0.00001" vs "1e-05") and non-finite ones (orjson: null; stdlib: NaN, not JSON). A decision's floats
are scores from `scoring.number` (rounded to 2 decimals; non-finite values raise there), so they never fall
in that range; `compact_bytes` still checks the output for such a float and uses the stdlib encoder when it
finds one, and whenever orjson refuses the data (lone surrogates, integers beyond 64 bits, other types).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from engine.jsonstrict import Decoder

_MAX_BRACKETS = 255
_LONG_DIGITS = b"0" * 19
# bytes -> "0" for a digit, "[" for "[" and "{", "x" for anything else
_DIGITS_AND_BRACKETS = bytes(ord("0") if 48 <= i <= 57 else ord("[") if i in (91, 123) else ord("x") for i in range(256))
_COLON_ESCAPE = re.compile(rb"\\u003[aA]")


class LeadDecoder:
    """Parses one lead's JSON text: orjson where it provably agrees with the strict parser, else the strict one."""

    def __init__(self) -> None:
        self.strict = Decoder(nonfinite=True).decode

    def decode(self, text: str | bytes) -> Any:
        """The lead's value; raises what `jsonstrict.Decoder(nonfinite=True).decode` raises for this text."""
        if isinstance(text, str):
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:  # surrogates: undecodable bytes read with surrogateescape, or worse
                return self.strict(text)
        else:
            data = text
        value = self.fast(data)
        return self.strict(text) if value is UNDECIDED else value

    @staticmethod
    def fast(data: bytes) -> Any:
        """The orjson reading of `data`, or `UNDECIDED` when only the strict parser may decide."""
        classes = data.translate(_DIGITS_AND_BRACKETS)
        if classes.count(b"[") > _MAX_BRACKETS or _LONG_DIGITS in classes:
            return UNDECIDED
        if b"\\" in data and _COLON_ESCAPE.search(data):
            return UNDECIDED
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return UNDECIDED
        colons = data.count(b":")
        if colons and colons != orjson.dumps(value).count(b":"):
            return UNDECIDED
        return value


# what `LeadDecoder.fast` returns when only the strict parser may decide (callers compare by identity)
UNDECIDED: Any = object()

_stdlib_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# orjson's single-digit negative exponent ("1e-9"; the stdlib writes "1e-09"): a literal first, so re scans for
# "e-" in C and only returns a match where a digit 1-9 follows and no second digit does (rare outside floats)
_SHORT_EXPONENT = re.compile(rb"e-[1-9](?![0-9])")


def _float_may_differ(out: bytes) -> bool:
    """Whether orjson's output may hold a float the stdlib writes differently ("0.00001", "1e-9"); strings that
    merely look like one ("page-1e-5") only cost a fallback to the stdlib encoder."""
    if b"0.0000" in out:
        return True
    for match in _SHORT_EXPONENT.finditer(out):
        if match.start() and 48 <= out[match.start() - 1] <= 57:
            return True
    return False


def compact_bytes(data: Any, errors: str = "strict") -> bytes:
    """Compact JSON as UTF-8, byte-identical to ``render.to_json(data, pretty=False).encode("utf-8", errors)``."""
    try:
        out = orjson.dumps(data)
    except TypeError:  # lone surrogates, integers beyond 64 bits, types orjson does not serialise
        return _stdlib_compact(data).encode("utf-8", errors)
    if _float_may_differ(out):
        return _stdlib_compact(data).encode("utf-8", errors)
    return out


__all__ = ["LeadDecoder", "compact_bytes"]
