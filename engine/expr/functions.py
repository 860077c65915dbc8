"""The helper functions policy expressions may call — the complete list (whitelisted by construction).

Each helper is registered in `HELPERS` with its arity, keyword arguments and static types. Generated
code calls the implementation through `RUNTIME_GLOBALS` under the name ``_f_<helper>``; helpers that
read the lead's activities and the clock (`count_activities`, `has_activity`, `last_activity_at`,
`days_since`, `hours_since`) receive `lead` and/or the explicit `now` as hidden leading arguments.

Missing values: a helper given MISSING returns MISSING, except `present`, `missing` and `coalesce`.
Nothing here reads the host clock or the host time zone.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import re2

from engine.errors import EvaluationError, ExpressionError
from engine.expr import sandbox
from engine.expr.sandbox import EVAL_TYPE, MISSING
from engine.expr.types import (
    ANY,
    BOOL,
    DATETIME,
    INTEGER,
    NUMBER,
    STRING,
    ListType,
    NumberType,
    StringType,
    Type,
    join,
)

FREE_EMAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.com.au", "yahoo.co.in", "yahoo.fr",
        "yahoo.de", "ymail.com", "rocketmail.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de",
        "hotmail.it", "hotmail.es", "outlook.com", "outlook.com.au", "live.com", "live.com.au", "live.co.uk",
        "msn.com", "passport.com", "icloud.com", "me.com", "mac.com", "aol.com", "aim.com", "gmx.com", "gmx.de",
        "gmx.net", "web.de", "mail.com", "mail.ru", "yandex.com", "yandex.ru", "proton.me", "protonmail.com",
        "pm.me", "tutanota.com", "zoho.com", "zohomail.com", "fastmail.com", "hey.com", "qq.com", "163.com",
        "126.com", "sina.com", "naver.com", "bigpond.com", "bigpond.net.au", "optusnet.com.au",
        "iinet.net.au", "tpg.com.au", "internode.on.net", "westnet.com.au", "xtra.co.nz", "orange.fr",
        "free.fr", "laposte.net", "t-online.de", "libero.it", "btinternet.com", "sky.com", "comcast.net",
        "verizon.net", "att.net", "sbcglobal.net", "cox.net", "rediffmail.com", "inbox.com", "hushmail.com",
    }
)  # fmt: skip


def _type_error(helper: str, expected: str, value: Any) -> EvaluationError:
    return EvaluationError(EVAL_TYPE, f"{helper}() expects {expected}, got {sandbox._tn(value)}")


# --------------------------------------------------------------------------------------------------
# Implementations


def present(x: Any) -> bool:
    """True when `x` has a value (the field exists and is not null)."""
    return x is not MISSING


def missing(x: Any) -> bool:
    """True when `x` is MISSING (absent field or null)."""
    return x is MISSING


def coalesce(x: Any, default: Any) -> Any:
    """`x` when present, otherwise `default`."""
    return default if x is MISSING else x


def _string_fn(name: str, op: Callable[[str], str]) -> Callable[[Any], Any]:
    def helper(s: Any) -> Any:
        if s is MISSING:
            return MISSING
        if type(s) is not str:
            raise _type_error(name, "a string", s)
        return op(s)

    helper.__name__ = name
    return helper


lower = _string_fn("lower", str.lower)
lower.__doc__ = "`s` in lower case."
upper = _string_fn("upper", str.upper)
upper.__doc__ = "`s` in upper case."
strip = _string_fn("strip", str.strip)
strip.__doc__ = "`s` without leading and trailing white space."


def _affix_fn(name: str, op: Callable[[str, Any], bool]) -> Callable[[Any, Any], Any]:
    def helper(s: Any, affix: Any) -> Any:
        if s is MISSING or affix is MISSING:
            return MISSING
        if type(s) is not str:
            raise _type_error(name, "a string", s)
        if type(affix) is tuple:
            if not all(type(a) is str for a in affix):
                raise _type_error(name, "a string or a list of strings", affix)
        elif type(affix) is not str:
            raise _type_error(name, "a string or a list of strings", affix)
        return op(s, affix)

    helper.__name__ = name
    return helper


startswith = _affix_fn("startswith", str.startswith)
startswith.__doc__ = "True when `s` starts with `prefix` (or with any of a list of prefixes)."
endswith = _affix_fn("endswith", str.endswith)
endswith.__doc__ = "True when `s` ends with `suffix` (or with any of a list of suffixes)."


def contains(container: Any, item: Any) -> Any:
    """True when the list `container` holds `item`, or the string `container` contains substring `item`."""
    if container is MISSING or item is MISSING:
        return MISSING
    if type(container) is str:
        if type(item) is not str:
            raise _type_error("contains", "a string item for a string container", item)
        return item in container
    if type(container) is tuple or type(container) is frozenset:
        return item in container
    raise _type_error("contains", "a string or a list", container)


def length(x: Any) -> Any:
    """The number of characters of a string, items of a list or fields of an object."""
    if x is MISSING:
        return MISSING
    if isinstance(x, (str, tuple, frozenset, dict)):
        return builtins.len(x)
    raise _type_error("len", "a string, list or object", x)


def _extreme(name: str, pick: Callable) -> Callable[..., Any]:
    def helper(*args: Any) -> Any:
        values = args[0] if builtins.len(args) == 1 else args
        if values is MISSING:
            return MISSING
        if type(values) not in (tuple, frozenset):
            raise _type_error(name, "a list or several values", values)
        if not values:
            return MISSING
        if any(v is MISSING for v in values):
            return MISSING
        return pick(values)

    helper.__name__ = name
    return helper


minimum = _extreme("min", builtins.min)
minimum.__doc__ = "The smallest of several values, or of one list (MISSING if any value is missing)."
maximum = _extreme("max", builtins.max)
maximum.__doc__ = "The largest of several values, or of one list (MISSING if any value is missing)."


def absolute(x: Any) -> Any:
    """The absolute value of a number."""
    if x is MISSING:
        return MISSING
    if type(x) is not int and type(x) is not float:
        raise _type_error("abs", "a number", x)
    return builtins.abs(x)


def round_(x: Any, ndigits: Any = 0) -> Any:
    """`x` rounded to `ndigits` decimals (Python rounding: halves go to the even neighbour).

    With ndigits=0 the result is an integer.
    """
    if x is MISSING or ndigits is MISSING:
        return MISSING
    if type(x) is not int and type(x) is not float:
        raise _type_error("round", "a number", x)
    if type(ndigits) is not int:
        raise _type_error("round", "an integer ndigits", ndigits)
    if builtins.abs(ndigits) > sandbox.MAX_ROUND_DIGITS:
        raise EvaluationError(sandbox.EVAL_LIMIT, f"round() ndigits must be within ±{sandbox.MAX_ROUND_DIGITS}")
    if ndigits == 0:
        return builtins.round(x)
    return builtins.round(x, ndigits)


def email_domain(email: Any) -> Any:
    """The lower-cased domain after the last '@' of an e-mail address (MISSING when there is none)."""
    if email is MISSING:
        return MISSING
    if type(email) is not str:
        raise _type_error("email_domain", "a string", email)
    at = email.rfind("@")
    if at < 0:
        return MISSING
    domain = email[at + 1 :].strip().lower().rstrip(".")
    return domain if domain else MISSING


def is_free_email(email: Any) -> Any:
    """True when the e-mail address is at a free web-mail provider (gmail.com, outlook.com, bigpond.com ...)."""
    domain = email_domain(email)
    if domain is MISSING:
        return MISSING
    return domain in FREE_EMAIL_DOMAINS


def _check_datetime(name: str, ts: Any) -> None:
    if type(ts) is not datetime:
        raise _type_error(name, "a date-time", ts)


def days_since(now: datetime, ts: Any) -> Any:
    """Days (fractional) from `ts` to the evaluation time `now`; negative when `ts` is in the future."""
    if ts is MISSING:
        return MISSING
    _check_datetime("days_since", ts)
    return (now - ts) / _ONE_DAY


def hours_since(now: datetime, ts: Any) -> Any:
    """Hours (fractional) from `ts` to the evaluation time `now`; negative when `ts` is in the future."""
    if ts is MISSING:
        return MISSING
    _check_datetime("hours_since", ts)
    return (now - ts) / _ONE_HOUR


_ONE_DAY = timedelta(days=1)
_ONE_HOUR = timedelta(hours=1)


def _activity_types(name: str, kind: Any) -> Any:
    if type(kind) is str:
        return (kind,)
    if type(kind) is tuple and all(type(k) is str for k in kind):
        return kind
    raise _type_error(name, "an activity type or a list of them", kind)


def _window_start(name: str, now: datetime, within_days: Any) -> Any:
    if within_days is None:
        return None
    if (type(within_days) is not int and type(within_days) is not float) or within_days < 0:
        raise _type_error(name, "a non-negative number of days for within_days", within_days)
    if within_days > 36_600:
        within_days = 36_600
    return now - timedelta(days=within_days)


def _matching_activities(name: str, lead: Any, now: datetime, kind: Any, within_days: Any, url: Any):
    kinds = _activity_types(name, kind)
    start = _window_start(name, now, within_days)
    activities = lead.get("activities", MISSING) if isinstance(lead, dict) else MISSING
    if activities is MISSING:
        return
    for act in activities:
        if not isinstance(act, dict) or act.get("type") not in kinds:
            continue
        at = act.get("at", MISSING)
        if type(at) is not datetime or at > now or (start is not None and at < start):
            continue
        if url is not None:
            act_url = act.get("url", MISSING)
            if act_url is MISSING or act_url != url:
                continue
        yield act


def matching_activities(lead: Any, now: datetime, kind: Any, within_days: Any = None, url: Any = None) -> list[Any]:
    """The activities `count_activities(kind, within_days, url)` counts, in lead order (for explanations)."""
    return list(_matching_activities("count_activities", lead, now, kind, within_days, url))


def count_activities(lead: Any, now: datetime, kind: Any, within_days: Any = None, url: Any = None) -> Any:
    """count_activities(type, within_days=None, url=None): how many of the lead's activities have this type
    (or one of a list of types), happened at or before `now` and, if given, within the last `within_days`
    days and on exactly this `url`."""
    if kind is MISSING or within_days is MISSING or url is MISSING:
        return MISSING
    if url is not None and type(url) is not str:
        raise _type_error("count_activities", "a string url", url)
    return sum(1 for _ in _matching_activities("count_activities", lead, now, kind, within_days, url))


def has_activity(lead: Any, now: datetime, kind: Any, within_days: Any = None) -> Any:
    """has_activity(type, within_days=None): True when the lead has at least one such activity."""
    if kind is MISSING or within_days is MISSING:
        return MISSING
    for _ in _matching_activities("has_activity", lead, now, kind, within_days, None):
        return True
    return False


def last_activity_at(lead: Any, now: datetime, kind: Any) -> Any:
    """last_activity_at(type): when the most recent such activity (at or before `now`) happened, or MISSING."""
    if kind is MISSING:
        return MISSING
    latest = MISSING
    for act in _matching_activities("last_activity_at", lead, now, kind, None, None):
        if latest is MISSING or act["at"] > latest:
            latest = act["at"]
    return latest


class Pattern:
    """A compiled RE2 pattern with a fast boolean `search` (no match object, no capture groups)."""

    __slots__ = ("pattern", "_compiled", "search")

    def __init__(self, pattern: str):
        options = re2.Options()
        options.log_errors = False
        options.never_capture = True
        options.max_mem = sandbox.RE2_MAX_MEMORY
        try:
            compiled = re2.compile(pattern, options)
        except re2.error as exc:
            message = exc.args[0] if exc.args else exc
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            raise ValueError(str(message)) from None
        size = max(compiled.programsize, getattr(compiled, "reverseprogramsize", 0) or 0)
        if size > sandbox.MAX_PATTERN_PROGRAM_SIZE:
            raise ValueError(
                f"pattern compiles to {size} RE2 instructions (limit MAX_PATTERN_PROGRAM_SIZE = "
                f"{sandbox.MAX_PATTERN_PROGRAM_SIZE}); use smaller repetition counts such as {{1,20}} or +"
            )
        self.pattern = pattern
        self._compiled = compiled
        self.search = self._make_search(compiled)

    @staticmethod
    def _make_search(compiled: Any) -> Callable[[str], bool]:
        regexp = getattr(compiled, "_regexp", None)
        anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
        null_span = getattr(re2, "_NULL_SPAN", None)
        if regexp is None or anchor is None or null_span is None:  # re2 internals changed: public API
            return lambda text: compiled.search(text) is not None
        match = regexp.Match

        def search(text: str) -> bool:
            # the public re2 API maps byte offsets back to str offsets on every call; a boolean search
            # only needs the UTF-8 bytes (lone surrogates are escaped so they cannot match by accident)
            data = text.encode("utf-8", "surrogatepass") if not text.isascii() else text.encode("ascii")
            return match(anchor, data, 0, len(data))[0] != null_span

        return search


_PATTERNS: dict[str, Pattern] = {}


def compile_pattern(pattern: str) -> Pattern:
    """Compile (and cache) an RE2 pattern; raises ValueError with re2's message when it is invalid."""
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = Pattern(pattern)
        if len(_PATTERNS) < 10_000:
            _PATTERNS[pattern] = compiled
    return compiled


def matches(s: Any, pattern: str) -> Any:
    """True when the RE2 regular expression `pattern` (a string literal) matches somewhere in `s`.

    Use ^ and $ to anchor. RE2 runs in linear time; back-references and look-around are not supported.
    """
    if s is MISSING:
        return MISSING
    if type(s) is not str:
        raise _type_error("matches", "a string", s)
    return compile_pattern(pattern).search(s)


# --------------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class Helper:
    """One helper: its implementation and what the checker needs to know about it."""

    name: str
    fn: Callable[..., Any]
    min_args: int
    max_args: int  # -1: variadic
    params: tuple[str, ...]  # positional parameter names (for keyword use and messages)
    keywords: tuple[str, ...] = ()  # parameters that may be passed by keyword (with their defaults)
    defaults: tuple[Any, ...] = ()  # defaults of `keywords`, in order (generated code passes them)
    implicit: tuple[str, ...] = ()  # hidden leading arguments: "lead", "now"
    arg_types: tuple[Type, ...] = ()  # expected type of each positional argument (ANY: unchecked)
    returns: Callable[[list[Type]], Type] = field(default=lambda args: ANY)
    literal_args: tuple[int, ...] = ()  # positions that must be string literals (validated at load time)

    @property
    def global_name(self) -> str:
        return f"_f_{self.name}"

    @property
    def signature(self) -> str:
        params = list(self.params[: len(self.params) - len(self.keywords)])
        params += [f"{k}={'None' if d is None else repr(d)}" for k, d in zip(self.keywords, self.defaults)]
        if self.max_args == -1:
            params = ["x", "..."]
        return f"{self.name}({', '.join(params)})"

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0]


def _const(t: Type) -> Callable[[list[Type]], Type]:
    return lambda args: t


def _first(args: list[Type]) -> Type:
    return args[0] if args else ANY


def _extreme_type(args: list[Type]) -> Type:
    if len(args) == 1:
        return args[0].item if isinstance(args[0], ListType) else ANY
    result = args[0]
    for t in args[1:]:
        result = join(result, t)
    return result


def _coalesce_type(args: list[Type]) -> Type:
    return join(args[0], args[1]) if len(args) == 2 else ANY


def _abs_type(args: list[Type]) -> Type:
    return args[0] if args and isinstance(args[0], NumberType) else NUMBER


_ACTIVITY_KIND = ANY  # a string or a list of strings; checked specially against the activity type enum

HELPERS: dict[str, Helper] = {
    h.name: h
    for h in [
        Helper("present", present, 1, 1, ("x",), returns=_const(BOOL)),
        Helper("missing", missing, 1, 1, ("x",), returns=_const(BOOL)),
        Helper("coalesce", coalesce, 2, 2, ("x", "default"), returns=_coalesce_type),
        Helper("lower", lower, 1, 1, ("s",), arg_types=(STRING,), returns=_const(STRING)),
        Helper("upper", upper, 1, 1, ("s",), arg_types=(STRING,), returns=_const(STRING)),
        Helper("strip", strip, 1, 1, ("s",), arg_types=(STRING,), returns=_const(STRING)),
        Helper("startswith", startswith, 2, 2, ("s", "prefix"), arg_types=(STRING, ANY), returns=_const(BOOL)),
        Helper("endswith", endswith, 2, 2, ("s", "suffix"), arg_types=(STRING, ANY), returns=_const(BOOL)),
        Helper("contains", contains, 2, 2, ("container", "item"), returns=_const(BOOL)),
        Helper("len", length, 1, 1, ("x",), returns=_const(INTEGER)),
        Helper("min", minimum, 1, -1, ("x",), returns=_extreme_type),
        Helper("max", maximum, 1, -1, ("x",), returns=_extreme_type),
        Helper("abs", absolute, 1, 1, ("x",), arg_types=(NUMBER,), returns=_abs_type),
        Helper(
            "round", round_, 1, 2, ("x", "ndigits"), keywords=("ndigits",), defaults=(0,),
            arg_types=(NUMBER, INTEGER), returns=lambda args: NUMBER,
        ),
        Helper("email_domain", email_domain, 1, 1, ("email",), arg_types=(STRING,), returns=_const(STRING)),
        Helper("is_free_email", is_free_email, 1, 1, ("email",), arg_types=(STRING,), returns=_const(BOOL)),
        Helper("days_since", days_since, 1, 1, ("ts",), implicit=("now",), arg_types=(DATETIME,), returns=_const(NUMBER)),
        Helper("hours_since", hours_since, 1, 1, ("ts",), implicit=("now",), arg_types=(DATETIME,), returns=_const(NUMBER)),
        Helper(
            "count_activities", count_activities, 1, 3, ("type", "within_days", "url"),
            keywords=("within_days", "url"), defaults=(None, None), implicit=("lead", "now"),
            arg_types=(_ACTIVITY_KIND, NUMBER, STRING), returns=_const(INTEGER),
        ),
        Helper(
            "has_activity", has_activity, 1, 2, ("type", "within_days"), keywords=("within_days",),
            defaults=(None,), implicit=("lead", "now"), arg_types=(_ACTIVITY_KIND, NUMBER), returns=_const(BOOL),
        ),
        Helper(
            "last_activity_at", last_activity_at, 1, 1, ("type",), implicit=("lead", "now"),
            arg_types=(_ACTIVITY_KIND,), returns=_const(DATETIME),
        ),
        Helper("matches", matches, 2, 2, ("s", "pattern"), arg_types=(STRING, STRING), literal_args=(1,),
               returns=_const(BOOL)),
    ]
}  # fmt: skip

ACTIVITY_HELPERS = frozenset({"count_activities", "has_activity", "last_activity_at"})


def validate_literal_argument(helper: Helper, position: int, value: Any, column: int) -> None:
    """Load-time validation of literal-only arguments (the matches() pattern)."""
    if helper.name == "matches":
        if type(value) is not str:
            raise ExpressionError(
                sandbox.EXPR_BAD_CALL, "matches() needs the pattern as a string literal", column,
                'e.g. matches(lead.email, "@(acme|globex)\\.com$")',
            )
        if len(value) > sandbox.MAX_PATTERN_LENGTH:
            raise ExpressionError(
                sandbox.EXPR_LIMIT, f"pattern longer than {sandbox.MAX_PATTERN_LENGTH} characters", column
            )
        try:
            compile_pattern(value)
        except ValueError as exc:
            raise ExpressionError(
                sandbox.EXPR_BAD_CALL, f"invalid regular expression {value!r}: {exc}", column,
                "patterns use RE2 syntax: no back-references or look-around",
            ) from None


def string_enum(t: Type) -> tuple[str, ...] | None:
    return t.enum if isinstance(t, StringType) else None
